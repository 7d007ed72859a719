"""What the live state's changes send out: routing effects become browser events (the event log, with their
audience) and worker commands; an accepted offer and operators' notes are stored as call events."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agent_console.models import CallEventRecord, utcnow
from agent_console.ops import routing as r
from agent_console.ops.eventlog import EventLog
from agent_console.ops.live import LiveCall
from agent_console.ops.persister import Persister
from agent_console.ops.protocol import (
    BridgeEvent,
    BridgeInfo,
    CallViewEvent,
    ErrorEvent,
    OfferEvent,
    OfferRevokedEvent,
    OperatorInfo,
    PresenceEvent,
    QueueEntry,
    QueueEvent,
)
from agent_console.ops.workers import WorkerRegistry
from ivr.contract import BridgeCommand, QueueStatus

log = logging.getLogger(__name__)

CONSOLE_ROLES = frozenset({"operator", "supervisor", "admin"})
WATCHERS = frozenset({"supervisor", "admin"})
HUB_WORKER = "hub"


def dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Outbox:
    def __init__(self, router: r.Router, calls: dict[str, LiveCall], log_: EventLog, workers: WorkerRegistry,
                 persist: Persister, *, ring_timeout_s: float):
        self.router = router
        self.calls = calls
        self.log = log_
        self.workers = workers
        self.persist = persist
        self.ring_timeout_s = ring_timeout_s
        self.direct: dict[int, set[Callable[[dict[str, Any]], None]]] = {}  # user -> their browsers' control line
        self.accepted_by: dict[str, int] = {}  # call_id -> user who accepted it (for a restart)
        #: told of every operator whose presence changed (the hubs sharing one state keep it in Redis)
        self.on_presence: Callable[[r.Operator], None] | None = None

    def audience(self, call_id: str) -> set[int]:
        users = set()
        for op in self.router.operators.values():
            if op.call_id == call_id or (op.offer is not None and op.offer.call_id == call_id):
                users.add(op.user_id)
        return users

    def emit_call(self, call: LiveCall, event: Any) -> None:
        self.log.append(event, roles=WATCHERS, users=self.audience(call.call_id))

    def say(self, user_id: int, msg: ErrorEvent) -> None:
        for say in list(self.direct.get(user_id, ())):
            say(msg.model_dump(mode="json"))

    def operator_info(self, op: r.Operator) -> OperatorInfo:
        return OperatorInfo(user_id=op.user_id, name=op.name or str(op.user_id), state=op.state,
                            since=dt(op.since), call_id=op.call_id, reason=op.reason, connected=op.connected)

    def queue_event(self) -> QueueEvent:
        entries = [QueueEntry(call_id=q.call_id, position=i, category=q.category, reason=q.reason,
                              joined_at=dt(q.joined_at), state=q.state)  # type: ignore[arg-type]
                   for i, q in enumerate(self.router.waiting())]
        return QueueEvent(entries=entries, operators_ready=self.router.operators_ready())

    def offer_event(self, offer: r.Offer) -> OfferEvent:
        call = self.calls.get(offer.call_id)
        q = self.router.queue.get(offer.call_id)
        return OfferEvent(call_id=offer.call_id, offer_id=offer.offer_id, user_id=offer.user_id,
                          expires_at=dt(offer.expires_at), caller=call.caller if call else "",
                          menu_path=list(call.menu_path) if call else [], category=q.category if q else None,
                          reason=q.reason if q else "", transcript=list(call.lines.values()) if call else [])

    def effects(self, effects: list[r.Effect]) -> None:
        for eff in effects:
            if isinstance(eff, r.OfferMade):
                self.log.append(self.offer_event(eff.offer), users={eff.offer.user_id})
            elif isinstance(eff, r.OfferRevoked):
                o = eff.offer
                self.log.append(OfferRevokedEvent(call_id=o.call_id, offer_id=o.offer_id, user_id=o.user_id,
                                                  reason=eff.reason), users={o.user_id})
            elif isinstance(eff, r.PresenceChanged):
                op = self.router.operators[eff.user_id]
                self.log.append(PresenceEvent(operator=self.operator_info(op)), roles=WATCHERS,
                                users={eff.user_id})
                if self.on_presence is not None:
                    self.on_presence(op)
            elif isinstance(eff, r.QueueChanged):
                self.log.append(self.queue_event(), roles=CONSOLE_ROLES)
            elif isinstance(eff, r.PositionChanged):
                self.workers.send_command(eff.worker, QueueStatus(call_id=eff.call_id, position=eff.position,
                                                                  operators_ready=eff.operators_ready))
            elif isinstance(eff, r.BridgeRequested):
                self.bridge(eff)
            elif isinstance(eff, r.CallConnected):
                call = self.calls.get(eff.call_id)
                if call is not None:
                    call.state, call.operator_id = "talking", eff.user_id
                    self.emit_call(call, CallViewEvent(call_id=call.call_id, state="talking"))

    def bridge(self, eff: r.BridgeRequested) -> None:
        call = self.calls.get(eff.call_id)
        self.accepted_by[eff.call_id] = eff.user_id
        payload = {"offer_id": eff.offer_id, "user_id": eff.user_id, "target": eff.target,
                   "operator": self.router.operators[eff.user_id].name}
        self.persist_event(eff.call_id, "offer_accepted", payload)
        sent = self.workers.send_command(eff.worker, BridgeCommand(call_id=eff.call_id, offer_id=eff.offer_id,
                                                                   target=eff.target,
                                                                   ring_timeout_s=self.ring_timeout_s))
        if call is not None:
            call.operator_id = eff.user_id
            call.bridge = BridgeInfo(call_id=eff.call_id, offer_id=eff.offer_id,
                                     state="requested" if sent else "failed",
                                     reason="" if sent else "worker_not_connected")
            self.emit_call(call, BridgeEvent(bridge=call.bridge))
        if not sent:
            log.warning("ops: worker %s has no command socket; bridge of call %s failed", eff.worker, eff.call_id)
            self.say(eff.user_id, ErrorEvent(code="worker_not_connected",
                                             message="无法连接该来电所在的语音节点，来电已退回队列"))
            self.effects(self.router.bridge_update(eff.call_id, eff.offer_id, "failed", "worker_not_connected"))

    def persist_event(self, call_id: str, type_: str, payload: dict[str, Any]) -> None:
        now = utcnow()
        record = CallEventRecord(event_id=uuid.uuid4().hex, call_id=call_id, worker=HUB_WORKER, type=type_,
                                 ts=now, received_at=now, payload=payload)
        self.persist.submit(lambda db: db.add(record))
