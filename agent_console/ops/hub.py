"""The operator console's realtime core: live calls, the queue and routing, the event log, worker commands.

One :class:`OpsHub` per hub process (``app.state.ops``). Its state is guarded by one lock and changed by

- worker events, right after the ingest stored them (:meth:`on_events_stored`, in the ingest's thread and
  order; only newly stored events, never duplicates). They are published to the subscribers in turn: agent
  assist (:mod:`~agent_console.ops.assist`), those the app wires in (work-order filing, the callbacks
  dispatcher), and last the live model (:mod:`~agent_console.ops.live_model`), which takes the lock,
- operators' commands from ``/ws/operator`` (:meth:`command`),
- the clock (:meth:`tick`: offer and bridge timeouts).

Every change that browsers must see is appended to the :class:`EventLog` with its audience; browsers follow
the log (see ``agent_console.ops.ws``). Commands to workers go through the :class:`WorkerRegistry`.
Operators' notes and accepted offers are also stored as call events (``worker = "hub"``), so the call
record keeps them and a restarted hub knows them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy.orm import Session

from agent_console.models import User
from agent_console.ops import routing as r
from agent_console.ops.assist import AgentAssist
from agent_console.ops.commands import OperatorCommands
from agent_console.ops.eventlog import EventLog, NullLog
from agent_console.ops.live import LiveCall, LiveCalls
from agent_console.ops.live_model import LiveModel
from agent_console.ops.outbox import CONSOLE_ROLES, WATCHERS, Outbox, dt
from agent_console.ops.persister import Persister, close_calls, open_call_events
from agent_console.ops.protocol import Snapshot
from agent_console.ops.shared_log import RedisEventLog
from agent_console.ops.workers import WorkerConn, WorkerRegistry
from ivr.contract import QueueStatus

__all__ = ["CONSOLE_ROLES", "WATCHERS", "OpsHub", "StoredEventsSubscriber"]
log = logging.getLogger(__name__)
ENDED_KEEP_S = 3600.0  # an ended call stays in the live view this long (unless an operator still holds it)
ENDED_KEEP_MAX = 300  # and only the latest this many: an hour at ~70 calls a minute held ~4,000 (1-hour soak)


class StoredEventsSubscriber(Protocol):
    """Told of each batch of newly stored events, in ingest order; ``notes`` (by event id) carries what an earlier
    subscriber found for a later one (agent assist's suggestions for the live model)."""

    def on_stored(self, events: Sequence[Any], notes: dict[str, Any]) -> None: ...


class OpsHub:
    def __init__(self, sessionmaker: Callable[[], Session], matcher: Any = None, *,
                 subscribers: Sequence[StoredEventsSubscriber] = (), live: LiveCalls | None = None,
                 workers: WorkerRegistry | None = None, persist: Persister | None = None,
                 offer_timeout_s: float = 15.0, bridge_ring_timeout_s: float = 20.0, worker_lost_after_s: float = 120.0,
                 clock: Callable[[], float] = time.time, log_capacity: int = 10_000,
                 order_check: Callable[[str], bool] | None = None, log: EventLog | RedisEventLog | None = None):
        """``log``: the event log browsers follow (default: one in this process of ``log_capacity`` entries)."""
        self.sessions = sessionmaker
        self.clock = clock
        self.worker_lost_after_s = worker_lost_after_s
        self.live = live or LiveCalls()
        self.calls: dict[str, LiveCall] = self.live.calls
        self.lock = self.live.lock
        self.log = log or EventLog(log_capacity)
        self.router = r.Router(clock, offer_timeout_s, bridge_timeout_s=bridge_ring_timeout_s + 10)
        self.workers = workers or WorkerRegistry()
        self.persist = persist or Persister(sessionmaker)
        self.out = Outbox(self.router, self.calls, self.log, self.workers, self.persist,
                          ring_timeout_s=bridge_ring_timeout_s)
        self.model = LiveModel(self.live, self.out, clock)
        self.assist = AgentAssist(sessionmaker, matcher)
        self.commands = OperatorCommands(self.router, self.out, self.calls, clock, order_check)
        # assist first (outside the lock, it needs the database and the matcher), the live model last
        self.subscribers: tuple[StoredEventsSubscriber, ...] = (self.assist, *subscribers, self.model)
        self._effects = self.out.effects
        self._accepted_by = self.out.accepted_by
        self.worker_calls = self.live.worker_calls

    @property
    def epoch(self) -> str:
        """The event log's epoch (shared by the hubs of one Redis)."""
        return self.log.epoch

    def on_events_stored(self, events: Iterable[Any], notes: dict[str, Any] | None = None) -> None:
        """Publish newly stored worker events to the subscribers (in ingest order); ``notes``: agent assist's findings
        made already (by the hub that received the events, of several sharing one state): assist is skipped."""
        events = list(events)
        subscribers = self.subscribers if notes is None else self.subscribers[1:]
        notes = {} if notes is None else dict(notes)
        for s in subscribers:
            try:
                s.on_stored(events, notes)
            except Exception:  # noqa: BLE001 - one subscriber's failure must not keep the others from the events
                log.exception("ops: %s failed on stored events", type(s).__name__)

    # ================================================================== operators
    def attach(self, user: User, say: Callable[[dict[str, Any]], None]) -> None:
        """An operator's browser connected (``say`` sends a control message to it, from any thread)."""
        with self.lock:
            self.out.direct.setdefault(user.id, set()).add(say)
            self.router.upsert_operator(user.id, name=user.display_name or user.username, sip_uri=user.sip_uri,
                                        skills=user.skills or ())
            self._effects(self.router.set_connected(user.id, True))

    def detach(self, user_id: int, say: Callable[[dict[str, Any]], None]) -> None:
        with self.lock:
            conns = self.out.direct.get(user_id, set())
            conns.discard(say)
            if not conns:
                self.out.direct.pop(user_id, None)
                self._effects(self.router.set_connected(user_id, False))

    def command(self, user: User, cmd: Any) -> str | None:
        """Carry out an operator's command; returns an error message (Chinese) or None."""
        with self.lock:
            return self.commands.run(user, cmd)

    # ================================================================== the clock and the workers
    def tick(self) -> None:
        # a worker away this long is gone (its host died, or it cannot reach this hub): its calls end here
        for worker, lost_at in self.workers.lost_before(self.clock() - self.worker_lost_after_s).items():
            log.warning("ops: worker %s away for %.0f s; its calls end as worker_lost", worker,
                        self.clock() - lost_at)
            self.on_worker_hello(worker, [], opened_at=lost_at)
        with self.lock:
            self._effects(self.router.tick())
            self._forget_ended()

    def _forget_ended(self) -> None:
        """Drop ended calls older than ENDED_KEEP_S, and the oldest beyond ENDED_KEEP_MAX (not one an operator
        still holds in wrap-up). Under the lock."""
        cutoff = dt(self.clock() - ENDED_KEEP_S)
        held = {op.call_id for op in self.router.operators.values()}
        ended = sorted((c for c in self.calls.values() if c.state == "ended" and c.ended_at and c.call_id not in held),
                       key=lambda c: c.ended_at)
        surplus = max(0, len(ended) - ENDED_KEEP_MAX)
        for i, c in enumerate(ended):
            if i < surplus or c.ended_at < cutoff:
                del self.calls[c.call_id]

    def on_worker_hello(self, worker: str, calls: list[str], opened_at: float | None = None) -> None:
        """A worker (re)connected: end the calls of it that it no longer has, tell it where its queued callers
        stand.

        ``calls`` are the worker's live calls. A call this hub still shows as live on that worker but missing
        from the list is gone (the worker restarted, or its end never reached the hub): it is ended in the live
        view, leaves the queue (its operator, if any, goes to wrap-up), and its call record is closed as
        ``worker_lost`` — so a restarted hub does not bring it back. A real ``call_ended`` from the worker's
        spool, if one comes later, wins (it is earlier).

        Only calls the hub knew before ``opened_at`` (when it accepted the worker's socket; the worker builds its
        hello after that) are judged: a call that began after the hello was built is rightly not in it."""
        live = set(calls)
        now = self.clock()
        cutoff = now if opened_at is None else opened_at
        with self.lock:
            stale_ids = {c.call_id for c in self.calls.values() if c.worker == worker and c.state != "ended"
                         and c.call_id not in live and c.seen_at < cutoff}
            stale_ids |= {q.call_id for q in self.router.waiting() if q.worker == worker and q.call_id not in live
                          and q.call_id not in self.calls}
            for call_id in sorted(stale_ids):
                call = self.calls.get(call_id)
                if call is not None:
                    self.model.end(call, dt(now))
                else:
                    self._effects(self.router.call_ended(call_id))
            if stale_ids:
                log.warning("ops: worker %s no longer has %d call(s) the hub showed live; ended them: %s",
                            worker, len(stale_ids), ", ".join(sorted(stale_ids)))
                self.persist.submit(close_calls(sorted(stale_ids), worker, dt(now)))
            ready = self.router.operators_ready()
            positions = self.router.positions()
            for q in self.router.waiting():
                if q.worker == worker:
                    self.workers.send_command(worker, QueueStatus(call_id=q.call_id, position=positions[q.call_id],
                                                                  operators_ready=ready))

    # ================================================================== reading
    def snapshot(self, user: User) -> Snapshot:
        with self.lock:
            me = self.out.operator_info(self.router.operator(user.id))
            watcher = user.role in WATCHERS
            operators = ([self.out.operator_info(o) for o in self.router.operators.values()] if watcher else [me])
            op = self.router.operators[user.id]
            offer = self.out.offer_event(op.offer) if op.offer is not None else None
            mine = {x for x in (op.call_id, op.offer.call_id if op.offer else None) if x}
            calls = [c.snapshot() for c in self.calls.values()
                     if c.call_id in mine or (watcher and (c.state != "ended" or c.call_id in mine))]
            return Snapshot(last_seq=self.log.head_seq, epoch=self.epoch, me=me, operators=operators,
                            queue=self.out.queue_event(), offer=offer, calls=calls)

    def wallboard(self) -> dict[str, Any]:
        with self.lock:
            now = self.clock()
            states = {"ivr": 0, "queued": 0, "talking": 0}
            for c in self.calls.values():
                if c.state in states:
                    states[c.state] += 1
            waiting = self.router.waiting()
            longest = max((now - q.joined_at for q in waiting), default=0.0)
            by_state = {s: 0 for s in r.PRESENCES}
            operators = []
            for op in self.router.operators.values():
                by_state[op.state] += 1
                operators.append(self.out.operator_info(op).model_dump(mode="json"))
            return {"calls_in_ivr": states["ivr"], "calls_in_queue": len(waiting), "calls_talking": states["talking"],
                    "longest_wait_s": round(longest, 1), "operators_by_state": by_state, "operators": operators,
                    "queue": self.out.queue_event().model_dump(mode="json")["entries"],
                    "workers_connected": self.workers.connected()}

    def call_hints(self, call_id: str) -> dict[str, str | None] | None:
        """A live call's topic for a work order's draft (None when the call is not live)."""
        with self.lock:
            call = self.calls.get(call_id)
            return call.hints() if call is not None else None

    def worker_closed(self, conn: WorkerConn, at: float) -> None:
        """A worker's command socket on this hub closed at ``at``."""
        self.workers.unregister(conn, at)

    def close(self) -> None:  # the app's shutdown
        self.persist.stop()
        self.log.close()

    # ================================================================== start-up
    def rebuild(self, skip: Collection[str] = frozenset(), *, quiet: bool = False) -> set[str]:
        """Rebuild the live calls and the queue from the open calls in the database (after a restart, or when this
        hub begins to decide for several), leaving out the events ``skip`` (on their way here); ``quiet``: nothing
        goes to the event log (the browsers saw it). Returns the ids of the events replayed."""
        rows_by_call = open_call_events(self.sessions, skip)
        with self.lock:
            log_, self.out.log = self.out.log, (NullLog() if quiet else self.out.log)
            try:
                self.model.replay(rows_by_call)
            finally:
                self.out.log = log_
        return {row.event_id for rows in rows_by_call.values() for row in rows}

    def reset(self) -> None:
        """Forget the live calls, the queue and the operators (another hub decides now)."""
        with self.lock:
            self.calls.clear()
            self.router.reset()
            self.out.direct.clear()
            self.out.accepted_by.clear()
