"""Orders the hub files by itself from stored call events, once per call or event however often they arrive:

- a call that ended ``answered_by_kb`` (the knowledge base answered, the caller hung up content): a closed
  consult order, settled at once (即办);
- a ``MessageRecorded`` to a judge, an urge, a complaint or a suggestion: an order with the transcript and the
  recording's file name, dispatched to the case's judge's team (联络法官) or department (催办), or to the
  supervisors (投诉), with the category's feedback deadline. The case system may be slow or down, so these
  are filed on the hub's background writer; a case that cannot be looked up leaves the order for a supervisor.
  The worker reports the message the moment the caller finishes; its transcript follows as a
  ``MessageTranscribed`` and replaces the order's "（转写中）".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from agent_console.work_orders.orders import WorkOrderContext
from agent_console.work_orders.service import attach_transcript, kb_settled_order, message_order

log = logging.getLogger(__name__)
MESSAGE_PURPOSES = frozenset({"contact_judge", "urge", "complaint", "suggestion"})
KB_CAUSE = "answered_by_kb"


def wants(e: Any) -> bool:
    return ((e.type == "message_recorded" and e.purpose in MESSAGE_PURPOSES)
            or e.type == "message_transcribed"
            or (e.type == "call_ended" and e.cause == KB_CAUSE))


def file_for_event(ctx: WorkOrderContext, sessions: Callable[[], Session], e: Any,
                   submit: Callable[[Callable[[Session], None]], None]) -> None:
    if e.type == "call_ended":
        with sessions() as db:
            order, created = kb_settled_order(db, ctx, call_id=e.call_id, at=e.ts)
            db.commit()
        if created:
            log.info("work orders: %s settled at once by the knowledge base (call %s)", order.number, e.call_id)
        return
    if e.type == "message_transcribed":  # after its message's order (the same ordered writer)
        submit(lambda db: _transcript(db, e))
        return
    submit(lambda db: _message(ctx, db, e))


def _transcript(db: Session, e: Any) -> None:
    order = attach_transcript(db, event=e, message_order_purposes=MESSAGE_PURPOSES)
    if order is None:
        log.warning("work orders: transcript of %s (call %s) has no order to go to", e.recording, e.call_id)


def _message(ctx: WorkOrderContext, db: Session, e: Any) -> None:
    from court_cases.system import CaseSystemUnavailable

    case, problem = None, ""
    if e.purpose in ("contact_judge", "urge"):
        if not e.case_number:
            problem = "留言未关联已核实的案件"
        elif ctx.case_lookup is None:
            problem = "未配置案件系统"
        else:
            try:
                case = ctx.case_lookup(e.case_number)
                problem = "" if case is not None else "案件系统中未找到该案件"
            except CaseSystemUnavailable:
                problem = "案件系统暂时无法查询"
    order, created = message_order(db, ctx, event=e, case=case, case_problem=problem)
    if created:
        log.info("work orders: %s filed for a %s message of call %s (assignee %s)", order.number, e.purpose,
                 e.call_id, order.assignee)
