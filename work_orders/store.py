"""The work orders' store, the one way a work order changes: :func:`record` writes the row change and its history
line (and any notices) in the caller's transaction; :func:`move` applies a move of ``work_orders.rules`` through it.

Concurrent changes are caught, not merged: the row is updated only if ``updated_at`` is still what was read
(compare-and-set), so two people rating the same callback cannot both succeed; :func:`move` re-reads and
re-checks the rules once more before it gives up with :class:`Conflict`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from work_orders import rules
from work_orders import taxonomy as tx
from work_orders.calendar import WorkCalendar
from work_orders.models import WorkOrder, WorkOrderHistory, WorkOrderNotice
from work_orders.numbering import format_number
from work_orders.rules import Actor, Change
from work_orders.settings import CHANNEL_NAMES, WorkOrderSettings

log = logging.getLogger(__name__)

SYSTEM = Actor("系统", "system")
_NUMBER_ATTEMPTS = 20
#: PostgreSQL's advisory lock key for writers of work orders and departments (see :func:`begin_write`)
WRITE_LOCK_KEY = 12368_0001
#: fields that are not copied into the history's ``changes`` (their own columns say it, or too large)
_QUIET = frozenset({"updated_at", "transcript"})


class Conflict(Exception):
    """Someone else changed the order between reading and writing it."""

    message = "工单已被他人修改，请刷新后重试"


@dataclass
class WorkOrderContext:
    """What the work-order code of a hub needs: the calendar, settings, the clock, where files go."""

    calendar: WorkCalendar
    settings: WorkOrderSettings = field(default_factory=WorkOrderSettings)
    attachments_dir: Path | None = None
    #: the WAVs the IVR workers write (calls with an operator, recorded messages)
    recordings_dir: Path | None = None
    clock: Callable[[], datetime] | None = None
    #: case number -> court_cases.CaseInfo or None; raises CaseSystemUnavailable (set by the app)
    case_lookup: Callable[[str], Any] | None = None

    def now(self) -> datetime:
        if self.clock is not None:
            return self.clock()
        f = self.settings.clock_file
        if f is not None:
            try:
                at = datetime.fromisoformat(Path(f).read_text(encoding="utf-8").strip())
                return at if at.tzinfo else at.replace(tzinfo=UTC)
            except (OSError, ValueError):
                log.warning("work orders: clock file %s unreadable; using the system clock", f)
        return datetime.now(UTC)

    def taxonomy(self) -> tx.Taxonomy:
        return tx.load(self.settings.taxonomy_file)


def jsonable(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    return v


def snapshot(order: WorkOrder) -> rules.Order:
    return rules.Order(status=order.status, category=order.category, received_at=order.created_at,
                       assignee=order.assignee, feedback_due=order.feedback_due,
                       extension_requested=order.extension_requested,
                       callback_attempts=order.callback_attempts or 0)


def notice(order: WorkOrder, *, key: str, kind: str, audience: str, due_at: datetime, message: str,
           at: datetime) -> WorkOrderNotice:
    return WorkOrderNotice(key=key, order_id=order.id, kind=kind, due_at=due_at, audience=audience,
                           team=order.assignee if audience == "assignee" else None, message=message, created_at=at)


def record(db: Session, order: WorkOrder, *, actor: Actor, action: str, at: datetime, status: str | None = None,
           fields: dict[str, Any] | None = None, note: str = "", alerts: Iterable[str] = (),
           notices: Iterable[WorkOrderNotice] = ()) -> WorkOrderHistory:
    """Change ``order`` (status and fields) and add its history line and notices; the caller commits.

    Raises :class:`Conflict` when the row changed since it was read."""
    fields = dict(fields or {})
    status_from = order.status
    status_to = status or order.status
    if status_to != status_from:
        fields["status"] = status_to
    changes = {k: [jsonable(getattr(order, k)), jsonable(v)] for k, v in fields.items()
               if k not in _QUIET and getattr(order, k) != v and k != "status"}
    fields["updated_at"] = max(at, order.updated_at + timedelta(microseconds=1)) if order.updated_at else at
    result = db.execute(update(WorkOrder).where(WorkOrder.id == order.id, WorkOrder.updated_at == order.updated_at)
                        .values(**fields).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise Conflict()
    for k, v in fields.items():
        setattr(order, k, v)
    db.flush()
    entry = WorkOrderHistory(order_id=order.id, at=at, actor=actor.name[:64], role=actor.role, action=action,
                             status_from=status_from, status_to=status_to, note=note, changes=changes)
    db.add(entry)
    label = rules.ACTION_NAMES.get(action, action)
    for audience in alerts:
        db.add(notice(order, key=f"{order.id}:{action}:{uuid.uuid4().hex[:12]}", kind=action, audience=audience,
                      due_at=at, message=f"{label}：{note}".strip("："), at=at))
    for n in notices:
        db.add(n)
    db.flush()
    return entry


def _fields_of(change: Change, order: WorkOrder, ctx: WorkOrderContext, now: datetime) -> dict[str, Any]:
    f = dict(change.fields)
    if f.pop("reopen_count_delta", 0):
        f["reopen_count"] = (order.reopen_count or 0) + 1
    cal = ctx.calendar
    if change.status in ("received", "reopened") and order.status not in ("received", "reopened"):
        f["dispatch_due"] = cal.same_day_due(now)  # returned or reopened: to be dispatched again today
        f["overdue"] = False
    if change.action in ("dispatch", "answer", "return", "settle", "close_unreached"):
        f["overdue"] = False
    if change.action == "accept":  # 签收 ends a 签收 escalation; an overdue answer stays on the 督办 list
        f["overdue"] = bool(order.feedback_due and order.feedback_due < now)
    if change.action == "approve_extension" and f.get("feedback_due") and f["feedback_due"] > now:
        f["overdue"] = False
    if change.action == "answer":
        f["next_callback_at"] = now  # a callback is due from now (an automatic caller may take it)
    if change.action == "start_callback":
        f["callback_attempts"] = (order.callback_attempts or 0) + 1
        f["next_callback_at"] = None
    if change.status == "closed":
        f["next_callback_at"] = None
    return f


def apply_change(db: Session, order: WorkOrder, action: str, actor: Actor, payload: dict[str, Any],
                 ctx: WorkOrderContext, now: datetime) -> WorkOrderHistory:
    """Check ``action`` against the rules and record it (the caller commits). Raises Refused or Conflict."""
    change = rules.apply(snapshot(order), action, actor, payload, now, ctx.calendar, ctx.settings)
    return record(db, order, actor=actor, action=action, at=now, status=change.status,
                  fields=_fields_of(change, order, ctx, now), note=change.note, alerts=change.alerts)


def move(db: Session, order_id: int, action: str, actor: Actor, payload: dict[str, Any],
         ctx: WorkOrderContext) -> tuple[WorkOrder, WorkOrderHistory]:
    """Apply ``action`` of ``work_orders.rules`` and commit; :class:`Refused` or :class:`Conflict` change nothing.

    Raises LookupError when there is no such order."""
    for attempt in range(3):
        order = db.get(WorkOrder, order_id, populate_existing=True)
        if order is None:
            raise LookupError(order_id)
        try:
            entry = apply_change(db, order, action, actor, payload, ctx, ctx.now())
            db.commit()
            return order, entry
        except Conflict:
            db.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def begin_write(db: Session) -> None:
    """Open the write transaction now and take the work orders' write lock until it ends. SQLite's driver begins
    one only at the first write, and a SAVEPOINT outside a transaction commits on release — a row added in
    ``begin_nested`` would outlive a rollback. A write that changes nothing takes SQLite's write lock, so the
    day's next number is read under it too; PostgreSQL writers take one transaction-level advisory lock instead
    (without it concurrent filings read the same number and run out of retries)."""
    conn = db.connection()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("UPDATE work_orders SET id = id WHERE 0")
    elif conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(WRITE_LOCK_KEY)))


def next_number(db: Session, day: date) -> str:
    prefix = format_number(day, 1)[:-4]
    # the numeric maximum: "…-10000" sorts before "…-9999" as text, so the longest number comes first
    last = db.scalar(select(WorkOrder.number).where(WorkOrder.number.like(prefix + "%"))
                     .order_by(func.length(WorkOrder.number).desc(), WorkOrder.number.desc()).limit(1))
    n = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return format_number(day, n)


def create(db: Session, ctx: WorkOrderContext, *, actor: Actor, now: datetime | None = None, note: str = "",
           **fields: Any) -> WorkOrder:
    """Add a work order with the day's next number and its first history line (the caller commits).

    An order filed as settled (``settled_at_once``) is closed at once; others are due for dispatch today.
    Raises IntegrityError when ``auto_key`` is taken (another process filed it)."""
    now = now or ctx.now()
    day = ctx.calendar.local_date(now)
    settled = bool(fields.get("settled_at_once"))
    fields.setdefault("status", "closed" if settled else "received")
    if settled:
        fields.setdefault("closed_at", now)
    else:
        fields.setdefault("dispatch_due", ctx.calendar.same_day_due(now))
    fields.setdefault("created_by", actor.name[:64])
    begin_write(db)
    for _ in range(_NUMBER_ATTEMPTS):
        order = WorkOrder(number=next_number(db, day), created_at=now, updated_at=now, **fields)
        try:
            with db.begin_nested():
                db.add(order)
                db.flush()
        except IntegrityError:
            key = fields.get("auto_key")
            if key and db.scalar(select(WorkOrder.id).where(WorkOrder.auto_key == key)):
                raise
            continue
        text = note or ("即时办结" if settled else f"受理（{CHANNEL_NAMES.get(order.channel, order.channel)}）")
        db.add(WorkOrderHistory(order_id=order.id, at=now, actor=actor.name[:64], role=actor.role,
                                action="settle" if settled else "create", status_from=None, status_to=order.status,
                                note=text, changes={}))
        db.flush()
        return order
    raise RuntimeError("no free work-order number after several attempts")


def job_message(order: WorkOrder, kind: str, due: datetime, calendar: WorkCalendar) -> str:
    local = due.astimezone(calendar.tz).strftime("%m月%d日 %H:%M")
    what = {"dispatch_overdue": f"应于{local}前转办，已超时", "feedback_reminder": f"将于{local}到期，请及时反馈",
            "feedback_overdue": f"反馈期限{local}已过，列入督办", "callback_due": "承办部门已反馈，请回访",
            "sign_reminder": f"已转办至{order.assignee}，应于{local}前签收，请尽快签收",
            "sign_overdue": f"转办至{order.assignee}后至{local}仍未签收，列入督办"}[kind]
    return what
