"""The operator console's realtime core: live calls, the queue and routing, the event log, worker commands.

One :class:`OpsHub` per hub process (``app.state.ops``). Its state is guarded by one lock and changed by

- worker events, right after the ingest stored them (:meth:`on_events_stored`, in the ingest's thread and
  order; only newly stored events, never duplicates),
- operators' commands from ``/ws/operator`` (:meth:`command`),
- the clock (:meth:`tick`: offer and bridge timeouts).

Every change that browsers must see is appended to the :class:`EventLog` with its audience; browsers follow
the log (see ``agent_console.ops.ws``). Commands to workers go through the :class:`WorkerRegistry`.
Operators' notes and accepted offers are also stored as call events (``worker = "hub"``), so the call
record keeps them and a restarted hub knows them.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_console.models import Call, CallEventRecord, User, utcnow
from agent_console.ops import routing as r
from agent_console.ops.eventlog import EventLog
from agent_console.ops.live import LiveCall
from agent_console.ops.protocol import (
    BridgeEvent,
    BridgeInfo,
    CallViewEvent,
    ErrorEvent,
    NoteEvent,
    NoteOut,
    OfferEvent,
    OfferRevokedEvent,
    OperatorInfo,
    PresenceEvent,
    QueueEntry,
    QueueEvent,
    Snapshot,
    Suggestion,
    SuggestionsEvent,
)
from agent_console.work_orders import hub_orders
from agent_console.work_orders.calendar import WorkCalendar
from agent_console.work_orders.orders import WorkOrderContext
from agent_console.work_orders.service import ensure_auto_order
from ivr.contract import REFER_REFUSED_BRIDGING, BridgeCommand, CallEnded, CallEvent, EventBatch, QueueStatus
from knowledge_base.settings import fill_placeholders
from knowledge_base.store import get_entry

log = logging.getLogger(__name__)

CONSOLE_ROLES = frozenset({"operator", "supervisor", "admin"})
WATCHERS = frozenset({"supervisor", "admin"})
HUB_WORKER = "hub"
ENDED_KEEP_S = 3600.0  # an ended call stays in the live view this long (unless an operator still holds it)
SUGGESTIONS = 3
_event_adapter: TypeAdapter[Any] = TypeAdapter(CallEvent)


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Persister:
    """One background thread that runs database writes in order (keeps them off the event loop)."""

    def __init__(self, sessionmaker: Callable[[], Session]):
        self._sessions = sessionmaker
        self._jobs: queue.Queue[Callable[[Session], None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: Callable[[Session], None]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ops-persist", daemon=True)
                self._thread.start()
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                with self._sessions() as db:
                    job(db)
                    db.commit()
            except Exception:  # noqa: BLE001 - one failed write must not stop the others
                log.exception("ops: a database write failed")
            finally:
                self._jobs.task_done()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every submitted write is done (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._jobs.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(5)


def _close_calls(call_ids: list[str], worker: str, at: datetime) -> Callable[[Session], None]:
    """A database job: close the call records of calls a worker no longer has (cause ``worker_lost``)."""

    def job(db: Session) -> None:
        from agent_console.calls.ingest import ingest_batch

        events = [CallEnded(call_id=call_id, worker=worker, ts=at, cause="worker_lost", side="system")
                  for call_id in call_ids]
        ingest_batch(db, EventBatch(events=events))

    return job


class OpsHub:
    def __init__(self, sessionmaker: Callable[[], Session], matcher: Any = None, *,
                 calendar: WorkCalendar | None = None, offer_timeout_s: float = 15.0,
                 bridge_ring_timeout_s: float = 20.0, clock: Callable[[], float] = time.time,
                 log_capacity: int = 10_000):
        from agent_console.ops.workers import WorkerRegistry

        self.sessions = sessionmaker
        self.matcher = matcher
        self.calendar = calendar or WorkCalendar()
        self.clock = clock
        self.ring_timeout_s = bridge_ring_timeout_s
        self.lock = threading.RLock()
        self.epoch = uuid.uuid4().hex[:12]
        self.log = EventLog(log_capacity)
        self.router = r.Router(clock, offer_timeout_s, bridge_timeout_s=bridge_ring_timeout_s + 10)
        self.calls: dict[str, LiveCall] = {}
        self.workers = WorkerRegistry()
        self.persist = Persister(sessionmaker)
        self._direct: dict[int, set[Callable[[dict[str, Any]], None]]] = {}
        self._accepted_by: dict[str, int] = {}  # call_id -> user who accepted it (for a restart)
        self.work_orders: WorkOrderContext | None = None  # set by the app (settings, clock, case system)
        self.callbacks: Any = None  # the automatic callback dispatcher (its outcomes), set by the app
        self._rebuilding = False

    # ================================================================== worker events
    def on_events_stored(self, events: Iterable[Any]) -> None:
        """Fold newly stored worker events into the live state (called in ingest order)."""
        events = list(events)
        extra = self._enrich(events)
        with self.lock:
            for e in events:
                try:
                    self._apply(e, extra.get(e.event_id))
                except Exception:  # noqa: BLE001 - one odd event must not stop the live view
                    log.exception("ops: could not apply a %s event", e.type)
            self._effects(self.router.tick())

    def _enrich(self, events: list[Any]) -> dict[str, Any]:
        """What needs the database or the matcher, done before taking the lock: suggestions, KB categories,
        the orders the hub files itself."""
        out: dict[str, Any] = {}
        for e in events:
            try:
                if e.type == "speech_heard" and e.kind == "final" and e.speaker == "caller" and e.text.strip():
                    out[e.event_id] = self.suggest(e.text)
                elif e.type == "kb_decided" and e.faq_id:
                    out[e.event_id] = self._entry_category(e.faq_id)
                elif e.type == "queue_left" and e.outcome == "callback":
                    self._auto_order(e.call_id, "callback", e.ts)
                elif e.type == "message_recorded" and e.purpose in ("after_hours", "callback"):
                    self._auto_order(e.call_id, "after_hours" if e.purpose == "after_hours" else "message", e.ts,
                                     text=e.text, recording=e.recording)
                elif hub_orders.wants(e):  # KB-settled calls (即办), messages to a judge, urges, complaints
                    hub_orders.file_for_event(self._orders_ctx(), self.sessions, e, self.persist.submit)
                elif e.type == "callback_outcome" and self.callbacks is not None:  # 回访: rate or retry later
                    self.callbacks.on_outcome(e)
            except Exception:  # noqa: BLE001
                log.exception("ops: enriching a %s event failed", e.type)
        return out

    def suggest(self, text: str) -> list[Suggestion]:
        """The knowledge base's best entries for what the caller said (agent assist)."""
        if self.matcher is None:
            return []
        result = self.matcher.match(text)
        out: list[Suggestion] = []
        court = getattr(self.matcher, "court", None)
        with self.sessions() as db:
            for c in result.candidates[:SUGGESTIONS]:
                entry = get_entry(db, c.faq_id)
                if entry is None or not entry.enabled:
                    continue
                answer = fill_placeholders(entry.answer, court) if court is not None else entry.answer
                out.append(Suggestion(faq_id=c.faq_id, score=round(c.score, 3), category=entry.category,
                                      question=entry.question, answer=answer))
        return out

    def _entry_category(self, faq_id: str) -> str | None:
        with self.sessions() as db:
            entry = get_entry(db, faq_id)
            return entry.category if entry is not None else None

    def _orders_ctx(self) -> WorkOrderContext:
        return self.work_orders or WorkOrderContext(self.calendar)

    def _auto_order(self, call_id: str, kind: str, at: datetime, text: str = "", recording: str = "") -> None:
        # the same working day while the office is still to close (a message left at 07:00 on a Monday is
        # called back that Monday), else the next working day
        due = self.calendar.shared.same_day_due(at).date()
        live = self.calls.get(call_id)
        with self.sessions() as db:
            order, created = ensure_auto_order(db, self._orders_ctx(), call_id=call_id, kind=kind, at=at,
                                               category=live.category if live else None, text=text,
                                               recording=recording, callback_due=due)
            db.commit()
            if created:
                log.info("ops: work order %s filed for call %s (%s)", order.number, call_id, kind)

    def _apply(self, e: Any, extra: Any = None) -> None:
        t = e.type
        if t == "worker_lost":
            for call in [c for c in self.calls.values() if c.worker == e.worker and c.state != "ended"]:
                self._end(call, e.ts)
            return
        call = self.calls.get(e.call_id)
        if call is None:
            if t in ("call_rejected", "call_ended"):
                self._effects(self.router.call_ended(e.call_id))
                return
            call = self.calls[e.call_id] = LiveCall(e.call_id, e.worker, e.ts,
                                                    seen_at=0.0 if self._rebuilding else self.clock())
        if t == "call_offered":
            call.caller = e.caller
            self._emit_call(call, CallViewEvent(call_id=call.call_id, caller=call.caller, state=call.state))
        elif t == "menu_entered":
            call.menu_path.append(e.node)
            self._emit_call(call, CallViewEvent(call_id=call.call_id, menu_path=list(call.menu_path)))
        elif t == "speech_heard":
            line = call.speech(e.speaker, e.kind, e.text, e.ts)
            if line is not None:
                self._emit_call(call, CallViewEvent(call_id=call.call_id, line=line))
                if line.final and extra:
                    call.suggestions[line.line_id] = extra
                    self._emit_call(call, SuggestionsEvent(call_id=call.call_id, line_id=line.line_id,
                                                           query=line.text, items=extra))
        elif t == "kb_decided":
            call.kb = {"decision": e.decision, "faq_id": e.faq_id, "score": e.score, "reason": e.reason,
                       "offered": list(e.offered)}
            if extra:
                call.kb_category = extra
            self._emit_call(call, CallViewEvent(call_id=call.call_id, kb=call.kb))
        elif t == "kb_clarified":  # the caller's answer to "您是想问：一，…；二，…？": the entry picked or none
            call.kb = {**(call.kb or {}), "picked": e.picked, "picked_by": e.method}
            self._emit_call(call, CallViewEvent(call_id=call.call_id, kb=call.kb))
        elif t == "handoff_requested":
            call.reason = e.reason
            call.category = e.category or call.category
        elif t == "queue_joined":
            call.state, call.reason = "queued", e.reason
            call.category = e.category or call.category
            self._emit_call(call, CallViewEvent(call_id=call.call_id, state="queued"))
            self._effects(self.router.enqueue(call.call_id, call.worker, call.category, e.reason,
                                              e.ts.timestamp()))
        elif t == "queue_left":
            q = self.router.queue.get(call.call_id)
            if e.outcome == "bridged" and q is not None and q.offer is not None and q.offer.accepted_at is not None:
                self._effects(self.router.bridge_update(call.call_id, q.offer.offer_id, "connected"))
            else:
                if call.state == "queued":
                    call.state = "ivr"
                self._effects(self.router.leave(call.call_id, e.outcome))
        elif t == "bridge_update":
            if e.state == "failed" and e.reason == REFER_REFUSED_BRIDGING:  # the caller's phone refused the transfer;
                call.bridge = BridgeInfo(call_id=call.call_id, offer_id=e.offer_id, state="dialing",  # the worker
                                         reason=e.reason)  # bridges on the same offer: not a failed offer
                self._emit_call(call, BridgeEvent(bridge=call.bridge))
                return
            call.bridge = BridgeInfo(call_id=call.call_id, offer_id=e.offer_id, state=e.state, reason=e.reason)
            self._emit_call(call, BridgeEvent(bridge=call.bridge))
            q = self.router.queue.get(call.call_id)
            known = q is not None and q.offer is not None and q.offer.offer_id == e.offer_id
            if e.state == "connected" and q is not None and not known:  # accepted before a restart (or a
                self._effects(self.router.leave(call.call_id, "bridged"))  # bridge we had given up on)
                user_id = self._accepted_by.get(call.call_id)
                call.state, call.operator_id = "talking", user_id
                if user_id is not None:
                    self._effects(self.router.assign(user_id, call.call_id))
                self._emit_call(call, CallViewEvent(call_id=call.call_id, state="talking"))
            else:
                self._effects(self.router.bridge_update(call.call_id, e.offer_id, e.state, e.reason))
        elif t in ("call_ended", "call_rejected"):
            self._end(call, e.ts)

    def _end(self, call: LiveCall, at: datetime) -> None:
        if call.state == "ended":
            return
        call.state, call.ended_at = "ended", at
        call.open_lines.clear()
        self._emit_call(call, CallViewEvent(call_id=call.call_id, state="ended"))
        self._effects(self.router.call_ended(call.call_id))

    # ================================================================== effects -> events and commands
    def _audience(self, call_id: str) -> set[int]:
        users = set()
        for op in self.router.operators.values():
            if op.call_id == call_id or (op.offer is not None and op.offer.call_id == call_id):
                users.add(op.user_id)
        return users

    def _emit_call(self, call: LiveCall, event: Any) -> None:
        self.log.append(event, roles=WATCHERS, users=self._audience(call.call_id))

    def _operator_info(self, op: r.Operator) -> OperatorInfo:
        return OperatorInfo(user_id=op.user_id, name=op.name or str(op.user_id), state=op.state,
                            since=_dt(op.since), call_id=op.call_id, reason=op.reason, connected=op.connected)

    def _queue_event(self) -> QueueEvent:
        entries = [QueueEntry(call_id=q.call_id, position=i, category=q.category, reason=q.reason,
                              joined_at=_dt(q.joined_at), state=q.state)  # type: ignore[arg-type]
                   for i, q in enumerate(self.router.waiting())]
        return QueueEvent(entries=entries, operators_ready=self.router.operators_ready())

    def _offer_event(self, offer: r.Offer) -> OfferEvent:
        call = self.calls.get(offer.call_id)
        q = self.router.queue.get(offer.call_id)
        return OfferEvent(call_id=offer.call_id, offer_id=offer.offer_id, user_id=offer.user_id,
                          expires_at=_dt(offer.expires_at), caller=call.caller if call else "",
                          menu_path=list(call.menu_path) if call else [], category=q.category if q else None,
                          reason=q.reason if q else "", transcript=list(call.lines.values()) if call else [])

    def _effects(self, effects: list[r.Effect]) -> None:
        for eff in effects:
            if isinstance(eff, r.OfferMade):
                self.log.append(self._offer_event(eff.offer), users={eff.offer.user_id})
            elif isinstance(eff, r.OfferRevoked):
                o = eff.offer
                self.log.append(OfferRevokedEvent(call_id=o.call_id, offer_id=o.offer_id, user_id=o.user_id,
                                                  reason=eff.reason), users={o.user_id})
            elif isinstance(eff, r.PresenceChanged):
                op = self.router.operators[eff.user_id]
                self.log.append(PresenceEvent(operator=self._operator_info(op)), roles=WATCHERS,
                                users={eff.user_id})
            elif isinstance(eff, r.QueueChanged):
                self.log.append(self._queue_event(), roles=CONSOLE_ROLES)
            elif isinstance(eff, r.PositionChanged):
                self.workers.send_command(eff.worker, QueueStatus(call_id=eff.call_id, position=eff.position,
                                                                  operators_ready=eff.operators_ready))
            elif isinstance(eff, r.BridgeRequested):
                self._bridge(eff)
            elif isinstance(eff, r.CallConnected):
                call = self.calls.get(eff.call_id)
                if call is not None:
                    call.state, call.operator_id = "talking", eff.user_id
                    self._emit_call(call, CallViewEvent(call_id=call.call_id, state="talking"))

    def _bridge(self, eff: r.BridgeRequested) -> None:
        call = self.calls.get(eff.call_id)
        self._accepted_by[eff.call_id] = eff.user_id
        payload = {"offer_id": eff.offer_id, "user_id": eff.user_id, "target": eff.target,
                   "operator": self.router.operators[eff.user_id].name}
        self._persist_event(eff.call_id, "offer_accepted", payload)
        sent = self.workers.send_command(eff.worker, BridgeCommand(call_id=eff.call_id, offer_id=eff.offer_id,
                                                                   target=eff.target,
                                                                   ring_timeout_s=self.ring_timeout_s))
        if call is not None:
            call.operator_id = eff.user_id
            call.bridge = BridgeInfo(call_id=eff.call_id, offer_id=eff.offer_id,
                                     state="requested" if sent else "failed",
                                     reason="" if sent else "worker_not_connected")
            self._emit_call(call, BridgeEvent(bridge=call.bridge))
        if not sent:
            log.warning("ops: worker %s has no command socket; bridge of call %s failed", eff.worker, eff.call_id)
            self._say(eff.user_id, ErrorEvent(code="worker_not_connected",
                                              message="无法连接该来电所在的语音节点，来电已退回队列"))
            self._effects(self.router.bridge_update(eff.call_id, eff.offer_id, "failed", "worker_not_connected"))

    def _persist_event(self, call_id: str, type_: str, payload: dict[str, Any]) -> None:
        now = utcnow()
        record = CallEventRecord(event_id=uuid.uuid4().hex, call_id=call_id, worker=HUB_WORKER, type=type_,
                                 ts=now, received_at=now, payload=payload)
        self.persist.submit(lambda db: db.add(record))

    # ================================================================== operators
    def attach(self, user: User, say: Callable[[dict[str, Any]], None]) -> None:
        """An operator's browser connected (``say`` sends a control message to it, from any thread)."""
        with self.lock:
            self._direct.setdefault(user.id, set()).add(say)
            self.router.upsert_operator(user.id, name=user.display_name or user.username, sip_uri=user.sip_uri,
                                        skills=user.skills or ())
            self._effects(self.router.set_connected(user.id, True))

    def detach(self, user_id: int, say: Callable[[dict[str, Any]], None]) -> None:
        with self.lock:
            conns = self._direct.get(user_id, set())
            conns.discard(say)
            if not conns:
                self._direct.pop(user_id, None)
                self._effects(self.router.set_connected(user_id, False))

    def _say(self, user_id: int, msg: ErrorEvent) -> None:
        for say in list(self._direct.get(user_id, ())):
            say(msg.model_dump(mode="json"))

    def command(self, user: User, cmd: Any) -> str | None:
        """Carry out an operator's command; returns an error message (Chinese) or None."""
        with self.lock:
            try:
                if cmd.type == "presence":
                    self._effects(self.router.set_presence(user.id, cmd.state))
                elif cmd.type == "accept":
                    self._effects(self.router.accept(user.id, cmd.offer_id))
                elif cmd.type == "decline":
                    self._effects(self.router.decline(user.id, cmd.offer_id))
                elif cmd.type == "wrap_up_done":
                    self._effects(self.router.wrap_up_done(user.id))
                elif cmd.type == "note":
                    return self._note(user, cmd.call_id, cmd.text, "note", None)
                elif cmd.type == "play_suggestion":
                    call = self.calls.get(cmd.call_id)
                    found = [s for items in (call.suggestions.values() if call else []) for s in items
                             if s.faq_id == cmd.faq_id]
                    if not found:
                        return "没有这条推荐答案"
                    return self._note(user, cmd.call_id, found[-1].answer, "suggestion", cmd.faq_id)
                else:
                    return "不支持的操作"
            except r.RoutingError as e:
                return str(e)
        return None

    def _note(self, user: User, call_id: str, text: str, kind: str, faq_id: str | None) -> str | None:
        call = self.calls.get(call_id)
        if call is None:
            return "该通话已不在线"
        if user.role not in WATCHERS and user.id not in self._audience(call_id):
            return "只能为自己接听的来电添加备注"
        note = NoteOut(note_id=uuid.uuid4().hex[:12], call_id=call_id, kind=kind, text=text.strip(),  # type: ignore[arg-type]
                       by=user.display_name or user.username, at=_dt(self.clock()), faq_id=faq_id)
        call.notes.append(note)
        self._emit_call(call, NoteEvent(note=note))
        self._persist_event(call_id, "operator_note", note.model_dump(mode="json") | {"user_id": user.id})
        return None

    def tick(self) -> None:
        with self.lock:
            self._effects(self.router.tick())
            cutoff = _dt(self.clock() - ENDED_KEEP_S)
            held = {op.call_id for op in self.router.operators.values()}
            for call_id in [c.call_id for c in self.calls.values()
                            if c.state == "ended" and c.ended_at and c.ended_at < cutoff and c.call_id not in held]:
                del self.calls[call_id]

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
                    self._end(call, _dt(now))
                else:
                    self._effects(self.router.call_ended(call_id))
            if stale_ids:
                log.warning("ops: worker %s no longer has %d call(s) the hub showed live; ended them: %s",
                            worker, len(stale_ids), ", ".join(sorted(stale_ids)))
                self.persist.submit(_close_calls(sorted(stale_ids), worker, _dt(now)))
            ready = self.router.operators_ready()
            positions = self.router.positions()
            for q in self.router.waiting():
                if q.worker == worker:
                    self.workers.send_command(worker, QueueStatus(call_id=q.call_id, position=positions[q.call_id],
                                                                  operators_ready=ready))

    # ================================================================== reading
    def snapshot(self, user: User) -> Snapshot:
        with self.lock:
            me = self._operator_info(self.router.operator(user.id))
            watcher = user.role in WATCHERS
            operators = ([self._operator_info(o) for o in self.router.operators.values()] if watcher else [me])
            op = self.router.operators[user.id]
            offer = self._offer_event(op.offer) if op.offer is not None else None
            mine = self._audience_calls(user.id)
            calls = [c.snapshot() for c in self.calls.values()
                     if c.call_id in mine or (watcher and (c.state != "ended" or c.call_id in mine))]
            return Snapshot(last_seq=self.log.last_seq, epoch=self.epoch, me=me, operators=operators,
                            queue=self._queue_event(), offer=offer, calls=calls)

    def _audience_calls(self, user_id: int) -> set[str]:
        op = self.router.operators.get(user_id)
        if op is None:
            return set()
        return {x for x in (op.call_id, op.offer.call_id if op.offer else None) if x}

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
                operators.append(self._operator_info(op).model_dump(mode="json"))
            return {"calls_in_ivr": states["ivr"], "calls_in_queue": len(waiting), "calls_talking": states["talking"],
                    "longest_wait_s": round(longest, 1), "operators_by_state": by_state, "operators": operators,
                    "queue": self._queue_event().model_dump(mode="json")["entries"],
                    "workers_connected": self.workers.connected()}

    def worker_calls(self) -> dict[str, list[str]]:
        """Call slots each worker uses now, as far as its events tell: its live calls, a bridged (or ringing)
        operator leg counting once more."""
        out: dict[str, list[str]] = {}
        with self.lock:
            for c in self.calls.values():
                if c.state == "ended":
                    continue
                ids = out.setdefault(c.worker, [])
                ids.append(c.call_id)
                if c.bridge is not None and c.bridge.state in ("requested", "dialing", "connected"):
                    ids.append(c.call_id)
        return out

    def live_call(self, call_id: str) -> LiveCall | None:
        with self.lock:
            return self.calls.get(call_id)

    # ================================================================== start-up
    def rebuild(self) -> int:
        """Rebuild the live calls and the queue from the open calls in the database (after a restart)."""
        with self.sessions() as db:
            open_ids = list(db.scalars(select(Call.call_id).where(Call.status.in_(("offered", "answered")))))
            rows_by_call: dict[str, list[CallEventRecord]] = {}
            for call_id in open_ids:
                rows_by_call[call_id] = list(db.scalars(
                    select(CallEventRecord).where(CallEventRecord.call_id == call_id)
                    .order_by(CallEventRecord.ts, CallEventRecord.received_at)))
        with self.lock:
            self._rebuilding = True
            try:
                self._replay(rows_by_call)
            finally:
                self._rebuilding = False
        return len(rows_by_call)

    def _replay(self, rows_by_call: dict[str, list[CallEventRecord]]) -> None:
        for call_id, rows in rows_by_call.items():
            for row in rows:
                if row.type == "offer_accepted":
                    self._accepted_by[call_id] = int(row.payload.get("user_id", 0))
                    continue
                if row.type == "operator_note":
                    call = self.calls.get(call_id)
                    if call is not None:
                        with contextlib.suppress(ValidationError):
                            call.notes.append(NoteOut.model_validate(
                                {k: v for k, v in row.payload.items() if k != "user_id"}))
                    continue
                try:
                    event = _event_adapter.validate_python(row.payload)
                except ValidationError:
                    continue
                try:
                    self._apply(event)
                except Exception:  # noqa: BLE001
                    log.exception("ops: rebuilding call %s failed at a %s event", call_id, row.type)

    def ensure_auto_orders(self, since: timedelta = timedelta(days=3)) -> None:
        """File the hub's own orders for recent callback/message events that have none (a crash in between)."""
        cutoff = utcnow() - since
        with self.sessions() as db:  # _enrich files orders only for these types (and their outcomes)
            rows = list(db.scalars(select(CallEventRecord).where(
                CallEventRecord.type.in_(("queue_left", "message_recorded")), CallEventRecord.ts >= cutoff)))
            rows += db.scalars(select(CallEventRecord).where(
                CallEventRecord.type == "call_ended", CallEventRecord.ts >= cutoff,
                CallEventRecord.payload["cause"].as_string() == hub_orders.KB_CAUSE))
        for row in rows:
            try:
                e = _event_adapter.validate_python(row.payload)
            except ValidationError:
                continue
            self._enrich([e])
