"""The live model: worker events folded into the live calls and the queue, one handler per event class.

A subscriber of the hub's stored events (the last: agent assist's suggestions are in ``notes`` by then); it
also replays a call's stored events after a restart. Every change browsers must see goes out through the
:class:`~agent_console.ops.outbox.Outbox`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from agent_console.models import CallEventRecord
from agent_console.ops.live import LiveCall, LiveCalls
from agent_console.ops.outbox import Outbox
from agent_console.ops.protocol import BridgeEvent, BridgeInfo, CallViewEvent, NoteOut, SuggestionsEvent
from ivr.contract import (
    REFER_REFUSED_BRIDGING,
    BridgeUpdate,
    CallEnded,
    CallEvent,
    CallOffered,
    CallRejected,
    HandoffRequested,
    KbClarified,
    KbDecided,
    MenuEntered,
    QueueJoined,
    QueueLeft,
    SpeechHeard,
    WorkerLost,
)

log = logging.getLogger(__name__)
_event_adapter: TypeAdapter[Any] = TypeAdapter(CallEvent)


class LiveModel:
    def __init__(self, live: LiveCalls, out: Outbox, clock: Callable[[], float]):
        self.live = live
        self.calls = live.calls
        self.out = out
        self.router = out.router
        self.clock = clock
        self.rebuilding = False
        # the events that change the live view, each with its handler; others only reach the call record
        self._handlers: dict[type, Callable[[LiveCall, Any, Any], None]] = {
            CallOffered: self._offered, MenuEntered: self._menu, SpeechHeard: self._speech,
            KbDecided: self._kb_decided, KbClarified: self._kb_clarified, HandoffRequested: self._handoff,
            QueueJoined: self._queue_joined, QueueLeft: self._queue_left, BridgeUpdate: self._bridge_update,
            CallEnded: self._ended, CallRejected: self._ended,
        }

    def on_stored(self, events: Sequence[Any], notes: dict[str, Any]) -> None:
        with self.live.lock:
            for e in events:
                try:
                    self.apply(e, notes.get(e.event_id))
                except Exception:  # noqa: BLE001 - one odd event must not stop the live view
                    log.exception("ops: could not apply a %s event", e.type)
            self.out.effects(self.router.tick())

    def apply(self, e: Any, note: Any = None) -> None:
        if isinstance(e, WorkerLost):
            for call in [c for c in self.calls.values() if c.worker == e.worker and c.state != "ended"]:
                self.end(call, e.ts)
            return
        call = self.calls.get(e.call_id)
        if call is None:
            if isinstance(e, CallEnded | CallRejected):
                self.out.effects(self.router.call_ended(e.call_id))
                return
            call = self.calls[e.call_id] = LiveCall(e.call_id, e.worker, e.ts,
                                                    seen_at=0.0 if self.rebuilding else self.clock())
        handler = self._handlers.get(type(e))
        if handler is not None:
            handler(call, e, note)

    def end(self, call: LiveCall, at: datetime) -> None:
        if call.state == "ended":
            return
        # open lines stay open: a bridged leg's last final arrives after the hang-up and replaces its partial
        call.state, call.ended_at = "ended", at
        self.out.emit_call(call, CallViewEvent(call_id=call.call_id, state="ended"))
        self.out.effects(self.router.call_ended(call.call_id))

    # ------------------------------------------------------------------ one handler per event class
    def _offered(self, call: LiveCall, e: CallOffered, note: Any) -> None:
        call.caller = e.caller
        self.out.emit_call(call, CallViewEvent(call_id=call.call_id, caller=call.caller, state=call.state))

    def _menu(self, call: LiveCall, e: MenuEntered, note: Any) -> None:
        call.menu_path.append(e.node)
        self.out.emit_call(call, CallViewEvent(call_id=call.call_id, menu_path=list(call.menu_path)))

    def _speech(self, call: LiveCall, e: SpeechHeard, suggestions: Any) -> None:
        line = call.speech(e.speaker, e.kind, e.text, e.ts)
        if line is None:
            return
        self.out.emit_call(call, CallViewEvent(call_id=call.call_id, line=line))
        if line.final and suggestions:
            call.suggestions[line.line_id] = suggestions
            self.out.emit_call(call, SuggestionsEvent(call_id=call.call_id, line_id=line.line_id,
                                                      query=line.text, items=suggestions))

    def _kb_decided(self, call: LiveCall, e: KbDecided, category: Any) -> None:
        call.kb = {"decision": e.decision, "faq_id": e.faq_id, "score": e.score, "reason": e.reason,
                   "offered": list(e.offered)}
        if category:
            call.kb_category = category
        self.out.emit_call(call, CallViewEvent(call_id=call.call_id, kb=call.kb))

    def _kb_clarified(self, call: LiveCall, e: KbClarified, note: Any) -> None:
        # the caller's answer to "您是想问：一，…；二，…？": the entry picked or none
        call.kb = {**(call.kb or {}), "picked": e.picked, "picked_by": e.method}
        self.out.emit_call(call, CallViewEvent(call_id=call.call_id, kb=call.kb))

    def _handoff(self, call: LiveCall, e: HandoffRequested, note: Any) -> None:
        call.reason = e.reason
        call.category = e.category or call.category

    def _queue_joined(self, call: LiveCall, e: QueueJoined, note: Any) -> None:
        call.state, call.reason = "queued", e.reason
        call.category = e.category or call.category
        self.out.emit_call(call, CallViewEvent(call_id=call.call_id, state="queued"))
        self.out.effects(self.router.enqueue(call.call_id, call.worker, call.category, e.reason, e.ts.timestamp()))

    def _queue_left(self, call: LiveCall, e: QueueLeft, note: Any) -> None:
        q = self.router.queue.get(call.call_id)
        if e.outcome == "bridged" and q is not None and q.offer is not None and q.offer.accepted_at is not None:
            self.out.effects(self.router.bridge_update(call.call_id, q.offer.offer_id, "connected"))
            return
        if call.state == "queued":
            call.state = "ivr"
        self.out.effects(self.router.leave(call.call_id, e.outcome))

    def _bridge_update(self, call: LiveCall, e: BridgeUpdate, note: Any) -> None:
        if e.state == "failed" and e.reason == REFER_REFUSED_BRIDGING:
            # the caller's phone refused the transfer; the worker bridges on the same offer: not a failed offer
            call.bridge = BridgeInfo(call_id=call.call_id, offer_id=e.offer_id, state="dialing", reason=e.reason)
            self.out.emit_call(call, BridgeEvent(bridge=call.bridge))
            return
        call.bridge = BridgeInfo(call_id=call.call_id, offer_id=e.offer_id, state=e.state, reason=e.reason)
        self.out.emit_call(call, BridgeEvent(bridge=call.bridge))
        q = self.router.queue.get(call.call_id)
        known = q is not None and q.offer is not None and q.offer.offer_id == e.offer_id
        if e.state == "connected" and q is not None and not known:
            # accepted before a restart (or a bridge we had given up on)
            self.out.effects(self.router.leave(call.call_id, "bridged"))
            user_id = self.out.accepted_by.get(call.call_id)
            call.state, call.operator_id = "talking", user_id
            if user_id is not None:
                self.out.effects(self.router.assign(user_id, call.call_id))
            self.out.emit_call(call, CallViewEvent(call_id=call.call_id, state="talking"))
        else:
            self.out.effects(self.router.bridge_update(call.call_id, e.offer_id, e.state, e.reason))

    def _ended(self, call: LiveCall, e: CallEnded | CallRejected, note: Any) -> None:
        self.end(call, e.ts)

    # ------------------------------------------------------------------ after a restart
    def replay(self, rows_by_call: dict[str, list[CallEventRecord]]) -> None:
        """Fold the stored events of the open calls (the caller holds the lock)."""
        self.rebuilding = True
        try:
            for call_id, rows in rows_by_call.items():
                for row in rows:
                    self._replay_row(call_id, row)
        finally:
            self.rebuilding = False

    def _replay_row(self, call_id: str, row: CallEventRecord) -> None:
        if row.type == "offer_accepted":
            self.out.accepted_by[call_id] = int(row.payload.get("user_id", 0))
            return
        if row.type == "operator_note":
            call = self.calls.get(call_id)
            if call is not None:
                with contextlib.suppress(ValidationError):
                    call.notes.append(NoteOut.model_validate({k: v for k, v in row.payload.items() if k != "user_id"}))
            return
        try:
            event = _event_adapter.validate_python(row.payload)
        except ValidationError:
            return
        try:
            self.apply(event)
        except Exception:  # noqa: BLE001
            log.exception("ops: rebuilding call %s failed at a %s event", call_id, row.type)
