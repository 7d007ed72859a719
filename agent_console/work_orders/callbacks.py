"""回访 by an outbound call: the hub's callback dispatcher.

Every ``work_orders.auto_callback.interval_s`` (in office hours, when enabled) a pass takes the due orders
(``status`` answered or callback, ``next_callback_at`` at or before now, a dialable phone), chooses a connected IVR
worker with a free call slot, starts the callback (the ``start_callback`` move: ``callback_attempts`` + 1, which is
the command's ``attempt``, and ``next_callback_at`` cleared) and sends the worker a ``CallbackCommand``. The worker
reports a ``CallbackOutcome`` event; the ingest path hands newly stored ones to :meth:`on_outcome`: ``rated`` →
the ``rate`` move (closes, or reopens with a supervisor alert), anything else → ``callback_failed`` (due again after
``callback_retry_minutes``, then left to the supervisors). An outcome whose attempt is not the order's current one
is ignored.

Nothing lives only in memory. An automatic callback *in flight* is an order in ``callback`` with no
``next_callback_at`` whose latest history line is this dispatcher's ``start_callback``; a failure outcome applies
only to such an order (so a repeated outcome changes nothing), and one that was never reported (its worker died,
the command was lost) fails as 未收到回访结果 after ``outcome_timeout_s`` and is due again. When no worker can take a
call the due orders stay as they are; when the command cannot be sent, or the worker could not place the call
(no free slot, draining), the order is put back due a minute later (``callback_requeued``), its attempt spent.
A started callback is guarded by the row's compare-and-set, so two passes (or hubs) cannot start the same one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from agent_console.models import CallEventRecord, utcnow
from agent_console.work_orders import after_hours_callbacks as after_hours
from ivr.contract import CallbackCommand, CallbackOutcome
from work_orders import dial_plan
from work_orders.calendar import WorkingHours
from work_orders.callbacks import AUTO, NOT_PLACED, REQUEUE_DELAY, outcome_reason, spoken_summary
from work_orders.filing import Filing, filing_for
from work_orders.models import WorkOrder, WorkOrderHistory
from work_orders.rules import Refused
from work_orders.store import Conflict, WorkOrderContext, apply_change, record

log = logging.getLogger(__name__)

HUB_WORKER = "hub"
PENDING_S = 30.0  # a dispatched call counts against its worker's slots until its own events show it


@dataclass
class Pending:
    worker: str
    order_id: int
    attempt: int
    since: float


class WorkerLines(Protocol):
    """The hub's command sockets to IVR workers (``agent_console.ops.workers.WorkerRegistry``)."""

    def connected(self) -> list[str]: ...

    def send_command(self, worker: str, command: Any) -> bool: ...


class CallbackDispatcher:
    """One per hub (``app.state.callbacks``), made before the hub and handed to it as a subscriber of its stored
    events. ``workers`` are the hub's worker sockets; ``worker_calls`` tells the call slots each worker uses
    now (``agent_console.ops.live.LiveCalls.worker_calls``)."""

    def __init__(self, sessions: Callable[[], Session], ctx: WorkOrderContext, workers: WorkerLines,
                 worker_calls: Callable[[], dict[str, list[str]]], *, hours: WorkingHours | None = None,
                 worker_max_calls: int = 4, monotonic: Callable[[], float] = time.monotonic):
        self.sessions = sessions
        self.ctx = ctx
        self.workers = workers
        self.worker_calls = worker_calls
        self.hours = hours
        self.worker_max_calls = worker_max_calls
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._pending: dict[str, Pending] = {}
        self._said: dict[str, float] = {}  # log lines said lately (not every pass)
        self.dispatched = 0

    @property
    def settings(self):
        return self.ctx.settings.auto_callback

    # ------------------------------------------------------------------------------------------ a pass
    def office_open(self, now: datetime) -> bool:
        # without ivr.working_hours: its default opening (08:30) to work_orders.office_close
        cal = self.ctx.calendar
        hours = self.hours or WorkingHours(close=f"{cal.day_end:%H:%M}", timezone=cal.tz.key)
        return hours.is_open(now, cal)

    def run_once(self) -> list[CallbackCommand]:
        """Fail callbacks that were never reported, then (enabled, office hours) start due ones; returns the
        commands sent."""
        now = self.ctx.now()
        running = self.expire(now)
        if not self.settings.enabled or not self.office_open(now):
            return []
        room = self.settings.max_concurrent - running
        if room <= 0:
            return []
        sent: list[CallbackCommand] = []
        for order_id, phone, late in self._due(now, room * 4 + 10):
            if len(sent) >= room:
                break
            verdict = dial_plan.check(phone)
            target = self.settings.uri_for(phone) if verdict.ok else None
            if target is None:
                self._refuse(order_id, verdict.reason or "号码不可拨打", now)
                continue
            worker = self.pick_worker()
            if worker is None:
                self._say_once("no_worker", logging.WARNING,
                               "callbacks: due callbacks wait: no connected IVR worker has a free call slot (%s)",
                               ", ".join(self.workers.connected()) or "none connected")
                break
            cmd = self._start_after_hours(order_id, target, now) if late else self._start(order_id, target, now)
            if cmd is None:
                continue
            with self._lock:
                self._pending[cmd.call_id] = Pending(worker, cmd.order_id, cmd.attempt, self.monotonic())
            if not self.workers.send_command(worker, cmd):
                with self._lock:
                    self._pending.pop(cmd.call_id, None)
                log.warning("callbacks: worker %s could not be sent the callback of %s; due again soon", worker,
                            cmd.order_number)
                self._requeue(cmd.order_id, cmd.attempt, "语音节点未连接")
                continue
            self._link(cmd, worker)
            self.dispatched += 1
            sent.append(cmd)
            log.info("callbacks: %s attempt %d -> worker %s (call %s)", cmd.order_number, cmd.attempt, worker,
                     cmd.call_id)
        return sent

    def _due(self, now: datetime, limit: int) -> list[tuple[int, str, bool]]:
        """Due rated callbacks, then due after-hours callbacks: (order id, phone, after hours)."""
        with self.sessions() as db:
            rows = db.execute(select(WorkOrder.id, WorkOrder.citizen_phone).where(
                WorkOrder.status.in_(("answered", "callback")), WorkOrder.next_callback_at <= now,
                WorkOrder.citizen_phone != "").order_by(WorkOrder.next_callback_at, WorkOrder.id).limit(limit)).all()
            late = db.execute(select(WorkOrder.id, WorkOrder.citizen_phone).where(
                after_hours.due_condition(now, self.ctx.calendar.local_date(now)))
                .order_by(WorkOrder.callback_due, WorkOrder.id).limit(limit)).all()
        return [(r.id, r.citizen_phone, False) for r in rows] + [(r.id, r.citizen_phone, True) for r in late]

    def _start_after_hours(self, order_id: int, target: str, now: datetime) -> CallbackCommand | None:
        with self.sessions() as db:
            try:
                cmd = after_hours.start(db, order_id, target, now, self.ctx.calendar.local_date(now),
                                        self.settings.ring_timeout_s)
                db.commit()
                return cmd
            except Conflict:
                db.rollback()
                return None

    def _start(self, order_id: int, target: str, now: datetime) -> CallbackCommand | None:
        with self.sessions() as db:
            order = db.get(WorkOrder, order_id, populate_existing=True)
            if (order is None or order.status not in ("answered", "callback") or order.next_callback_at is None
                    or order.next_callback_at > now):
                return None  # moved meanwhile (an operator, another pass)
            try:
                apply_change(db, order, "start_callback", AUTO, {}, self.ctx, now)
                db.commit()
            except (Conflict, Refused) as e:
                db.rollback()
                log.info("callbacks: %s not started: %s", order.number, getattr(e, "message", e))
                return None
            return CallbackCommand(call_id=uuid.uuid4().hex, order_id=order.id, order_number=order.number,
                                   attempt=order.callback_attempts, target=target,
                                   summary=spoken_summary(order.feedback or ""),
                                   ring_timeout_s=self.settings.ring_timeout_s)

    def _link(self, cmd: CallbackCommand, worker: str) -> None:
        """The call record names its order: a hub event on the outbound call's id."""
        now = utcnow()
        try:
            with self.sessions() as db:
                db.add(CallEventRecord(event_id=uuid.uuid4().hex, call_id=cmd.call_id, worker=HUB_WORKER,
                                       type="callback_dispatched", ts=now, received_at=now,
                                       payload={"order_id": cmd.order_id, "order_number": cmd.order_number,
                                                "attempt": cmd.attempt, "worker": worker}))
                db.commit()
        except Exception:  # noqa: BLE001 - the link is for people; the callback goes on
            log.exception("callbacks: could not link call %s to %s", cmd.call_id, cmd.order_number)

    # ------------------------------------------------------------------------------------------ workers
    def pick_worker(self) -> str | None:
        """The connected worker with the most free call slots, keeping ``reserve_slots`` for incoming callers."""
        now = self.monotonic()
        busy = self.worker_calls()
        with self._lock:
            for call_id, p in list(self._pending.items()):
                if now - p.since > PENDING_S or call_id in busy.get(p.worker, ()):
                    del self._pending[call_id]
            pending = [p.worker for p in self._pending.values()]
        best, best_free = None, self.settings.reserve_slots
        for worker in self.workers.connected():
            free = self.worker_max_calls - len(busy.get(worker, ())) - pending.count(worker)
            if free > best_free:
                best, best_free = worker, free
        return best

    # ------------------------------------------------------------------------------------------ outcomes
    def on_stored(self, events: Sequence[Any], notes: dict[str, Any]) -> None:
        """The hub's newly stored events (each once): the callback outcomes among them."""
        for e in events:
            if filing_for(e) is Filing.CALLBACK_OUTCOME:  # 回访: rate or retry later
                try:
                    self.on_outcome(e)
                except Exception:  # noqa: BLE001 - the next outcome still counts
                    log.exception("callbacks: applying an outcome failed")

    def on_outcome(self, e: CallbackOutcome) -> None:
        """A newly stored ``CallbackOutcome`` (the ingest path: each event once)."""
        with self._lock:
            self._pending.pop(e.call_id, None)
        if e.outcome == "failed" and e.reason in NOT_PLACED:
            done = self._requeue(e.order_id, e.attempt, "语音节点繁忙" if e.reason == "no_slot" else "语音节点停止服务")
        elif (done := after_hours.on_outcome(self.sessions, self.ctx, e)) is not None:
            pass  # an after-hours callback's
        elif e.outcome == "rated" and e.rating is not None:
            done = self._checked(e.order_id, e.attempt, "rate", {"rating": e.rating}, in_flight=False)
        else:
            done = self._checked(e.order_id, e.attempt, "callback_failed", {"reason": outcome_reason(e)},
                                 in_flight=True)
        log.info("callbacks: order %s attempt %d: %s%s%s", e.order_id, e.attempt, e.outcome,
                 f" {e.rating} ({e.method})" if e.rating else "", "" if done else " (ignored: not current)")

    def recover(self, since: timedelta = timedelta(days=1)) -> int:
        """At start: apply outcomes stored but maybe not applied (the hub stopped in between); each changes an
        order only if it is still that order's current attempt. Returns how many changed one."""
        cutoff = utcnow() - since
        with self.sessions() as db:
            payloads = list(db.scalars(select(CallEventRecord.payload).where(
                CallEventRecord.type == "callback_outcome", CallEventRecord.ts >= cutoff)
                .order_by(CallEventRecord.ts)))
        applied = 0
        for p in payloads:
            try:
                e = CallbackOutcome.model_validate(p)
            except ValueError:
                continue
            if not (e.outcome == "failed" and e.reason in NOT_PLACED) and (
                    (ah := after_hours.on_outcome(self.sessions, self.ctx, e)) is not None):
                applied += ah
            elif e.outcome == "rated" and e.rating is not None:
                applied += self._checked(e.order_id, e.attempt, "rate", {"rating": e.rating}, in_flight=False)
            elif not (e.outcome == "failed" and e.reason in NOT_PLACED):
                applied += self._checked(e.order_id, e.attempt, "callback_failed", {"reason": outcome_reason(e)},
                                         in_flight=True)
        if applied:
            log.warning("callbacks: %d callback outcome(s) applied at start (the hub had stopped before)", applied)
        return applied

    def expire(self, now: datetime) -> int:
        """Callbacks in flight longer than ``outcome_timeout_s`` fail (due again); returns those still running."""
        limit = now - timedelta(seconds=self.settings.outcome_timeout_s)
        with self.sessions() as db:
            rows = db.execute(_in_flight()).all()
            late = after_hours.in_flight(db)
        running = sum(started > limit for _, _, started in late)
        for order_id, attempt, started in late:
            if started <= limit and after_hours.settle(self.sessions, self.ctx, order_id, attempt, "failed",
                                                       "未收到回电结果"):
                log.warning("callbacks: order %s after-hours attempt %d never reported; due again", order_id, attempt)
        for r in rows:
            started = r.callback_started_at
            if started is not None and started > limit:
                running += 1
            elif self._checked(r.id, r.callback_attempts, "callback_failed", {"reason": "未收到回访结果"},
                               in_flight=True):
                log.warning("callbacks: order %s attempt %d never reported within %.0f s; due again", r.id,
                            r.callback_attempts, self.settings.outcome_timeout_s)
        return running

    def _checked(self, order_id: int, attempt: int, action: str, payload: dict[str, Any], *,
                 in_flight: bool) -> bool:
        for _ in range(3):
            with self.sessions() as db:
                order = db.get(WorkOrder, order_id, populate_existing=True)
                if order is None or order.status != "callback" or order.callback_attempts != attempt:
                    return False
                if in_flight and not _is_in_flight(db, order):
                    return False
                try:
                    apply_change(db, order, action, AUTO, payload, self.ctx, self.ctx.now())
                    db.commit()
                    return True
                except Conflict:
                    db.rollback()
                except Refused as e:
                    db.rollback()
                    log.warning("callbacks: %s of order %s refused: %s", action, order_id, e.message)
                    return False
        return False

    def _requeue(self, order_id: int, attempt: int, why: str) -> bool:
        """The call was not placed: due again in a minute (the attempt number stays spent: it names the command)."""
        for _ in range(3):
            with self.sessions() as db:
                order = db.get(WorkOrder, order_id, populate_existing=True)
                if order is not None and after_hours.in_flight_since(db, order) is not None:
                    if after_hours.attempts(db, order_id) != attempt:
                        return False
                elif (order is None or order.status != "callback" or order.callback_attempts != attempt
                        or not _is_in_flight(db, order)):
                    return False
                now = self.ctx.now()
                try:
                    record(db, order, actor=AUTO, action="callback_requeued", at=now,
                           fields={"next_callback_at": now + REQUEUE_DELAY},
                           note=f"第{attempt}次自动回访未能发起（{why}），稍后重新发起")
                    db.commit()
                    return True
                except Conflict:
                    db.rollback()
        return False

    def _refuse(self, order_id: int, reason: str, now: datetime) -> None:
        """The dial plan refuses the order's number: no automatic call; the order leaves the automatic queue with
        the reason in its history (staff call back by hand, or correct the number and set it due again)."""
        log.warning("callbacks: order %s not called back automatically: %s", order_id, reason)
        for _ in range(3):
            with self.sessions() as db:
                order = db.get(WorkOrder, order_id, populate_existing=True)
                if order is None or (order.next_callback_at is None and order.status in ("answered", "callback")):
                    return
                try:
                    record(db, order, actor=AUTO, action="callback_refused", at=now,
                           fields={"next_callback_at": None}, note=f"不予自动回访：{reason}；请人工回访",
                           alerts=["supervisor"])
                    db.commit()
                    return
                except Conflict:
                    db.rollback()

    def _say_once(self, key: str, level: int, msg: str, *args: Any) -> None:
        now = self.monotonic()
        if now - self._said.get(key, -1e9) >= 60.0:
            self._said[key] = now
            log.log(level, msg, *args)


def _in_flight():
    latest = (select(func.max(WorkOrderHistory.id)).where(WorkOrderHistory.order_id == WorkOrder.id)
              .correlate(WorkOrder).scalar_subquery())
    return (select(WorkOrder.id, WorkOrder.callback_attempts, WorkOrder.callback_started_at)
            .join(WorkOrderHistory, WorkOrderHistory.id == latest)
            .where(WorkOrder.status == "callback", WorkOrder.next_callback_at.is_(None),
                   WorkOrderHistory.action == "start_callback", WorkOrderHistory.actor == AUTO.name))


def _is_in_flight(db: Session, order: WorkOrder) -> bool:
    if order.next_callback_at is not None:
        return False
    last = db.execute(select(WorkOrderHistory.action, WorkOrderHistory.actor)
                      .where(WorkOrderHistory.order_id == order.id)
                      .order_by(WorkOrderHistory.id.desc()).limit(1)).first()
    return last is not None and last.action == "start_callback" and last.actor == AUTO.name


def start(app) -> asyncio.Task:
    """The dispatcher's loop in the running loop (the app's lifespan cancels it)."""
    dispatcher: CallbackDispatcher = app.state.callbacks

    async def loop() -> None:
        try:
            await run_in_threadpool(dispatcher.recover)
        except Exception:  # noqa: BLE001
            log.exception("callbacks: recovering stored outcomes failed")
        while True:
            try:
                if getattr(app.state.ops, "leading", True):  # of several hubs, the one that decides dials
                    await run_in_threadpool(dispatcher.run_once)
            except Exception:  # noqa: BLE001 - a failed pass is retried on the next
                log.exception("callbacks: dispatcher pass failed")
            await asyncio.sleep(dispatcher.settings.interval_s)

    task = asyncio.get_running_loop().create_task(loop())
    app.state.callbacks_task = task
    return task
