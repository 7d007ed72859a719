"""The callback promised to a caller who left a message after hours, placed by the callbacks dispatcher
(``agent_console.work_orders.callbacks``) when ``work_orders.auto_callback`` is enabled.

Due: an order filed for an after-hours message (its content starts 非工作时间来电留言), not yet answered, with a
phone, ``callback_due`` today or earlier (the dispatcher dials only in office hours), and either never tried or
``next_callback_at`` passed (a retry). Started: history ``after_hours_callback`` by 自动回访, ``next_callback_at``
cleared; the attempt is the count of such lines. Outcomes: ``reached`` → ``callback_due`` cleared (the order leaves
the 回访单 list; it goes on to be handled as before), history ``after_hours_callback_done``; anything else → due
again after ``callback_retry_minutes``, then left to people with a supervisor alert. The order's status never
changes here, and ``callback_attempts`` stays the rated callback's.
"""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from ivr.contract import CallbackCommand, CallbackOutcome
from work_orders.callbacks import (
    AFTER_HOURS_LINE,
    AFTER_HOURS_STATES,
    AH_DONE,
    AH_FAILED,
    AH_START,
    AUTO,
    after_hours_failure,
    outcome_reason,
    spoken_summary,
)
from work_orders.models import WorkOrder, WorkOrderHistory
from work_orders.store import Conflict, WorkOrderContext, record

log = logging.getLogger(__name__)


def due_condition(now: datetime, today: date) -> Any:
    W, H = WorkOrder, WorkOrderHistory
    tried = exists().where(H.order_id == W.id, H.action.in_((AH_START, "callback_refused")))
    return and_(W.status.in_(AFTER_HOURS_STATES), W.content.like(f"{AFTER_HOURS_LINE}%"), W.citizen_phone != "",
                W.callback_due.is_not(None), W.callback_due <= today,
                or_(W.next_callback_at <= now, and_(W.next_callback_at.is_(None), ~tried)))


def attempts(db: Session, order_id: int) -> int:
    return db.scalar(select(func.count()).where(WorkOrderHistory.order_id == order_id,
                                                WorkOrderHistory.action == AH_START)) or 0


#: this callback's own history lines (staff moves in between, e.g. 转办, do not end one in flight)
OWN_ACTIONS = (AH_START, AH_FAILED, AH_DONE, "callback_requeued", "callback_refused")


def _latest(db: Session, order_id: int) -> WorkOrderHistory | None:
    return db.scalars(select(WorkOrderHistory).where(WorkOrderHistory.order_id == order_id,
                                                     WorkOrderHistory.action.in_(OWN_ACTIONS))
                      .order_by(WorkOrderHistory.id.desc()).limit(1)).first()


def in_flight_since(db: Session, order: WorkOrder) -> datetime | None:
    """When this order's after-hours callback started, if one is in flight now."""
    if order.status not in AFTER_HOURS_STATES or order.next_callback_at is not None or order.callback_due is None:
        return None
    last = _latest(db, order.id)
    return last.at if last is not None and last.action == AH_START and last.actor == AUTO.name else None


def in_flight(db: Session) -> list[tuple[int, int, datetime]]:
    """(order id, attempt, started) of every after-hours callback in flight."""
    rows = db.scalars(select(WorkOrder).where(WorkOrder.status.in_(AFTER_HOURS_STATES),
                                              WorkOrder.next_callback_at.is_(None),
                                              WorkOrder.callback_due.is_not(None),
                                              WorkOrder.content.like(f"{AFTER_HOURS_LINE}%"))).all()
    out = []
    for o in rows:
        since = in_flight_since(db, o)
        if since is not None:
            out.append((o.id, attempts(db, o.id), since))
    return out


def start(db: Session, order_id: int, target: str, now: datetime, today: date,
          ring_timeout_s: float) -> CallbackCommand | None:
    """Start the order's after-hours callback (None when it is no longer due); the caller commits."""
    order = db.get(WorkOrder, order_id, populate_existing=True)
    if order is None or db.scalar(select(WorkOrder.id).where(WorkOrder.id == order_id,
                                                             due_condition(now, today))) is None:
        return None
    attempt = attempts(db, order_id) + 1
    record(db, order, actor=AUTO, action=AH_START, at=now, fields={"next_callback_at": None},
           note=f"第{attempt}次自动回电（非工作时间留言）")
    return CallbackCommand(call_id=uuid.uuid4().hex, order_id=order.id, order_number=order.number, attempt=attempt,
                           target=target, summary=spoken_summary(order.feedback or ""), purpose="after_hours",
                           ring_timeout_s=ring_timeout_s)


def apply_outcome(db: Session, ctx: WorkOrderContext, order_id: int, attempt: int, outcome: str, reason: str,
                  now: datetime) -> bool | None:
    """An outcome of an after-hours callback: True applied, False stale (not the attempt in flight), None when the
    order has no after-hours callback in flight (the rated callback's path decides). The caller commits.
    Raises :class:`Conflict` when the row changed meanwhile."""
    order = db.get(WorkOrder, order_id, populate_existing=True)
    if order is None or in_flight_since(db, order) is None:
        return None
    if attempts(db, order_id) != attempt:
        return False
    if outcome == "reached":
        record(db, order, actor=AUTO, action=AH_DONE, at=now, fields={"callback_due": None},
               note=f"第{attempt}次自动回电已接听，已告知来电人留言已收到")
        return True
    wait, note, alert = after_hours_failure(attempt, ctx.settings.callback_retry_minutes, reason)
    record(db, order, actor=AUTO, action=AH_FAILED, at=now,
           fields={"next_callback_at": now + timedelta(minutes=wait) if wait is not None else None},
           note=note, alerts=["supervisor"] if alert else [])
    return True


def on_outcome(sessions, ctx: WorkOrderContext, e: CallbackOutcome) -> bool | None:
    """:func:`apply_outcome` for a reported outcome."""
    return settle(sessions, ctx, e.order_id, e.attempt, e.outcome, outcome_reason(e))


def settle(sessions, ctx: WorkOrderContext, order_id: int, attempt: int, outcome: str, reason: str) -> bool | None:
    """:func:`apply_outcome` in its own session, retried on a concurrent change."""
    for _ in range(3):
        with sessions() as db:
            try:
                done = apply_outcome(db, ctx, order_id, attempt, outcome, reason, ctx.now())
                db.commit()
                return done
            except Conflict:
                db.rollback()
    log.warning("callbacks: after-hours outcome of order %s not applied (kept changing)", order_id)
    return False
