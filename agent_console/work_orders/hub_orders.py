"""The hub's own work orders, filed from newly stored call events (what files one: ``work_orders.filing``), once
per call or event however often they arrive:

- a caller who chose a callback in the queue, or left a message after hours or for a callback: the call's
  order (``auto:<call>``), with a callback due the same working day while the office is still to close, else
  the next working day;
- a caller who hung up in the queue (or whose handoff found no hub): the same, kind ``missed`` (未接通回拨);
- a call that ended ``answered_by_kb`` (the knowledge base answered, the caller hung up content): a closed
  consult order, settled at once (即办);
- a call that heard its case's status by self-service and reached nobody and filed nothing else: a closed query
  order (即办) with the transcript and the status heard (judged on the background writer, after the call's
  message orders);
- a repeat contact (the same number or case within ``repeat_days`` of an open order) joins that order instead
  (重复来电; settled-at-once calls and messages routed to a team keep their own order);
- a ``MessageRecorded`` to a judge, an urge, a complaint or a suggestion: an order with the transcript and the
  recording's file name, dispatched to the case's judge's team (联络法官) or department (催办), or to the
  supervisors (投诉), with the category's feedback deadline. The case system may be slow or down, so these
  are filed on the hub's background writer; a case that cannot be looked up leaves the order for a supervisor.
  The worker reports the message the moment the caller finishes; its transcript follows as a
  ``MessageTranscribed`` and replaces the order's "（转写中）".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import String, func, select
from sqlalchemy.orm import Session

from agent_console.models import Call, CallEventRecord, utcnow
from agent_console.work_orders.call_facts import refresh_call_transcript
from agent_console.work_orders.service import (
    attach_transcript,
    call_has_order,
    ensure_auto_order,
    kb_settled_order,
    message_order,
    status_settled_order,
)
from court_cases.system import CaseSystemUnavailable
from ivr.contract import CallEvent
from work_orders.filing import (
    AUTO_KINDS,
    KB_CAUSE,
    RECHECKED_TYPES,
    ROUTED_PURPOSES,
    STATUS_PROMPT,
    CallFacts,
    Filing,
    call_end_filing,
    filing_for,
    status_heard,
)
from work_orders.store import WorkOrderContext

log = logging.getLogger(__name__)
_event_adapter: TypeAdapter[Any] = TypeAdapter(CallEvent)


class HubFiling:
    """A subscriber of the hub's stored events that files their orders.

    ``category_of`` gives a live call's category (chosen in the menu or the queue), ``submit`` runs a database
    job on the hub's ordered background writer."""

    def __init__(self, ctx: WorkOrderContext, sessions: Callable[[], Session], *,
                 category_of: Callable[[str], str | None], submit: Callable[[Callable[[Session], None]], None]):
        self.ctx = ctx
        self.sessions = sessions
        self.category_of = category_of
        self.submit = submit

    def on_stored(self, events: Sequence[Any], notes: dict[str, Any]) -> None:
        for e in events:
            try:
                self.file(e)
            except Exception:  # noqa: BLE001 - one failed order must not stop the others
                log.exception("work orders: filing for a %s event failed", e.type)

    def file(self, e: Any) -> None:
        what = filing_for(e)
        if what in AUTO_KINDS:
            self._auto_order(e, AUTO_KINDS[what])
        elif what is Filing.KB_SETTLED:
            with self.sessions() as db:
                order, created = kb_settled_order(db, self.ctx, call_id=e.call_id, at=e.ts)
                db.commit()
            if created:
                log.info("work orders: %s settled at once by the knowledge base (call %s)", order.number, e.call_id)
        elif what is Filing.TRANSCRIPT:  # after its message's order (the same ordered writer)
            self.submit(lambda db: self._transcript(db, e))
        elif what is Filing.ROUTED_MESSAGE:
            self.submit(lambda db: self._message(db, e))
        elif what is Filing.CALL_LINE:  # after the orders filed before it (the same ordered writer)
            self.submit(lambda db: refresh_call_transcript(db, e.call_id))
        elif what is Filing.CALL_ENDED:  # after the call's message orders (the same ordered writer)
            self.submit(lambda db: self._call_ended(db, e))

    def recheck(self, since: timedelta = timedelta(days=3)) -> None:
        """File the orders of recent events that have none (the hub stopped between storing and filing)."""
        cutoff = utcnow() - since
        with self.sessions() as db:
            rows = list(db.scalars(select(CallEventRecord).where(
                CallEventRecord.type.in_(sorted(RECHECKED_TYPES - {"call_ended"})), CallEventRecord.ts >= cutoff)))
            rows += db.scalars(select(CallEventRecord).where(
                CallEventRecord.type == "call_ended", CallEventRecord.ts >= cutoff,
                CallEventRecord.payload["cause"].as_string() == KB_CAUSE))
            # other ends matter only when the call heard a case's status
            rows += db.scalars(select(CallEventRecord).join(Call, Call.call_id == CallEventRecord.call_id).where(
                CallEventRecord.type == "call_ended", CallEventRecord.ts >= cutoff,
                CallEventRecord.payload["cause"].as_string() != KB_CAUSE,
                func.cast(Call.prompts, String).like(f'%"{STATUS_PROMPT}%')))
        for row in rows:
            try:
                e = _event_adapter.validate_python(row.payload)
            except ValidationError:
                continue
            try:
                self.file(e)
            except Exception:  # noqa: BLE001
                log.exception("work orders: filing for a %s event failed", e.type)

    def _auto_order(self, e: Any, kind: str) -> None:
        # the same working day while the office is still to close (a message left at 07:00 on a Monday is
        # called back that Monday), else the next working day
        due = self.ctx.calendar.same_day_due(e.ts).date()
        message = e.type == "message_recorded"
        with self.sessions() as db:
            order, created = ensure_auto_order(db, self.ctx, call_id=e.call_id, kind=kind, at=e.ts,
                                               category=self.category_of(e.call_id),
                                               text=e.text if message else "",
                                               recording=e.recording if message else "", callback_due=due)
            db.commit()
            if created:
                log.info("ops: work order %s filed for call %s (%s)", order.number, e.call_id, kind)

    def _call_ended(self, db: Session, e: Any) -> None:
        call = db.get(Call, e.call_id)
        if call is None or not status_heard(list(call.prompts or [])):
            return  # most calls: nothing more to look up
        bridged = db.scalar(select(CallEventRecord.event_id).where(
            CallEventRecord.call_id == e.call_id, CallEventRecord.type == "bridge_update",
            CallEventRecord.payload["state"].as_string() == "connected").limit(1)) is not None
        facts = CallFacts(status_heard=True, reached_operator=bridged,
                          has_order=call_has_order(db, e.call_id))
        if call_end_filing(facts) is Filing.STATUS_SETTLED:
            order, created = status_settled_order(db, self.ctx, call_id=e.call_id, at=e.ts)
            if created:
                log.info("work orders: %s settled at once by case self-service (call %s)", order.number, e.call_id)

    @staticmethod
    def _transcript(db: Session, e: Any) -> None:
        order = attach_transcript(db, event=e, message_order_purposes=ROUTED_PURPOSES)
        if order is None:
            log.warning("work orders: transcript of %s (call %s) has no order to go to", e.recording, e.call_id)

    def _message(self, db: Session, e: Any) -> None:
        case, problem = None, ""
        if e.purpose in ("contact_judge", "urge"):
            if not e.case_number:
                problem = "留言未关联已核实的案件"
            elif self.ctx.case_lookup is None:
                problem = "未配置案件系统"
            else:
                try:
                    case = self.ctx.case_lookup(e.case_number)
                    problem = "" if case is not None else "案件系统中未找到该案件"
                except CaseSystemUnavailable:
                    problem = "案件系统暂时无法查询"
        order, created = message_order(db, self.ctx, event=e, case=case, case_problem=problem)
        if created:
            log.info("work orders: %s filed for a %s message of call %s (assignee %s)", order.number, e.purpose,
                     e.call_id, order.assignee)
