"""The worker's call to an operator's phone, connected to the caller in pjsua2's conference bridge.

Conference wiring once the operator answers (``ca`` caller's call audio, ``cp`` caller's media
port, ``oa`` operator's call audio, ``op`` operator's media port)::

    ca -> cp   (as before: caller frames to the call's task: transcription, the stereo recording)
    cp -> ca   (as before: prompts to the caller; silent while bridged)
    ca -> oa   caller to operator
    oa -> ca   operator to caller
    oa -> op   operator frames to the call's task (transcription as "operator", recording right channel)

The leg holds one of the worker's call slots from dialing until its call is DISCONNECTED; its
pjsua objects are retired like a caller's (kept alive a little past the end, see the worker).
Everything here runs on the worker's main thread (pjsua callbacks inside poll, or the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

import numpy as np
import pjsua2 as pj
import structlog

from ivr.contract import BridgeCommand, BridgeUpdate
from ivr.sip.call import SipCall
from ivr.sip.media_port import CallMediaPort, PortPool

log = structlog.get_logger(__name__)

#: SIP final responses of the operator's phone as stable reasons for the hub (others: the reason phrase)
#: (the hub sets the operator away for these, except ``cancelled``; see agent_console.ops.routing.PHONE_FAILURES)
FAILURE_REASONS = {486: "busy", 600: "busy", 603: "declined", 408: "no_answer", 480: "no_answer", 487: "cancelled",
                   404: "not_found", 410: "not_found", 484: "not_found", 604: "not_found", 488: "no_common_codec",
                   502: "unreachable", 503: "unreachable", 504: "unreachable"}


def failure_reason(status_code: int | None, phrase: str) -> str:
    if status_code in FAILURE_REASONS:
        return FAILURE_REASONS[status_code]
    return "_".join(phrase.lower().split())[:60] or "failed"


class LegHost(Protocol):
    """What a worker lends a call for an outbound leg."""

    ports: PortPool

    def leg_account(self) -> pj.Account: ...
    def reserve_leg(self) -> bool: ...
    def release_leg(self) -> None: ...
    def retire(self, call: object, port: object | None) -> None: ...


class CallerLine(Protocol):
    """What a leg needs of the caller's call (a ``CallSession``): its audio in the bridge and its record."""

    call_id: str
    rate: int
    ended: bool
    call: SipCall
    call_audio: pj.AudioMedia | None

    def emit(self, event_cls, **fields) -> None: ...


class OperatorLeg:
    """One attempt to reach an operator: dialing -> connected -> ended, or dialing -> failed."""

    hands_over = False  # the caller stays on this worker's call (a REFER, ivr/refer.py, hands the caller over)
    bridge_instead = False  # only a refused REFER asks the queue to bridge instead

    def __init__(self, session: CallerLine, cmd: BridgeCommand, host: LegHost, node: str,
                 on_state: Callable[[OperatorLeg], None]):
        self.session = session
        self.cmd = cmd
        self.host = host
        self.node = node
        self._on_state = on_state
        self.loop = asyncio.get_running_loop()
        self.state = "dialing"
        self.status_code: int | None = None
        self.reason = ""
        self.call: SipCall | None = None
        self.port: CallMediaPort | None = None
        self.audio: pj.AudioMedia | None = None
        self.confirmed = False
        self.t_dial = self.loop.time()
        self.setup_s: float | None = None  # dial -> audio connected
        self.rx_peak = 0
        self.audio_chunks: asyncio.Queue[bytes] = asyncio.Queue(maxsize=50)
        self.taps: list[Callable[[bytes], None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._slot = False
        self._end_reason = ""

    # ---- start ------------------------------------------------------------------------------
    def start(self) -> bool:
        """Place the call. False (and state failed) when no slot is free or pjsua refuses the target."""
        if not self.host.reserve_leg():
            self._fail(None, "no_slot")
            return False
        self._slot = True
        self.emit("dialing")
        self.port = self.host.ports.take(f"o{self.session.call_id[:7]}", self.loop, self._on_audio, 40.0)
        self.call = SipCall(self.host.leg_account())
        self.call.listener = self
        try:
            self.call.makeCall(self.cmd.target, pj.CallOpParam(True))
        except pj.Error as e:
            log.warning("operator_dial_failed", call_id=self.session.call_id, target=self.cmd.target, error=e.info())
            self.call.listener = None
            self.host.retire(self.call, self.port)
            self.call = None
            self._release()
            self._fail(None, f"dial_error: {e.reason}"[:200])
            return False
        self._timer = self.loop.call_later(self.cmd.ring_timeout_s, self._ring_timeout)
        log.info("operator_dialing", call_id=self.session.call_id, target=self.cmd.target, offer=self.cmd.offer_id)
        return True

    def emit(self, state: str, status_code: int | None = None, reason: str = "") -> None:
        self.session.emit(BridgeUpdate, offer_id=self.cmd.offer_id, target=self.cmd.target, state=state,
                          status_code=status_code, reason=reason)

    # ---- pjsua callbacks (main thread) -------------------------------------------------------
    def on_media_active(self, audio: pj.AudioMedia) -> None:
        self.audio = audio
        self._maybe_connect()

    def on_confirmed(self) -> None:
        self.confirmed = True
        self._maybe_connect()

    def on_digit(self, digit: str, method: str) -> None:
        log.info("operator_digit", call_id=self.session.call_id, digit=digit)

    def on_disconnected(self, status_code: int, reason: str) -> None:
        self._cancel_timer()
        if self.port is not None:
            self.port.detach_audio()
        if self.state == "dialing":
            if self._end_reason == "ring_timeout":
                self._fail(408, "no_answer")
            elif self._end_reason:
                self._fail(status_code or None, self._end_reason)
            else:
                self._fail(status_code or None, failure_reason(status_code, reason))
        elif self.state == "connected":
            self.state = "ended"
            why = self._end_reason or "operator_hangup"
            self.reason = why
            self.emit("ended", None, why)
            log.info("operator_leg_ended", call_id=self.session.call_id, reason=why)
            self._on_state(self)
        self.host.retire(self.call, self.port)
        self._release()

    # ---- internals --------------------------------------------------------------------------
    def _maybe_connect(self) -> None:
        if self.state != "dialing" or not self.confirmed or self.audio is None:
            return
        caller = self.session.call_audio
        if caller is None or self.session.ended:
            self.hangup("caller_gone")
            return
        self._cancel_timer()
        try:
            caller.startTransmit(self.audio)
            self.audio.startTransmit(caller)
            self.audio.startTransmit(self.port)
        except pj.Error as e:
            log.error("bridge_connect_failed", call_id=self.session.call_id, error=e.info())
            self.hangup("bridge_error")
            return
        self.state = "connected"
        self.setup_s = round(self.loop.time() - self.t_dial, 3)
        self.emit("connected", 200)
        log.info("operator_connected", call_id=self.session.call_id, target=self.cmd.target, setup_s=self.setup_s)
        self._on_state(self)

    def _on_audio(self, data: bytes) -> None:
        if data:
            peak = int(np.abs(np.frombuffer(data, dtype="<i2")).max())
            self.rx_peak = max(self.rx_peak, peak)
        for tap in self.taps:
            tap(data)
        if self.audio_chunks.full():
            self.audio_chunks.get_nowait()
        self.audio_chunks.put_nowait(data)

    async def operator_chunks(self):
        """Operator audio (100 ms PCM16 chunks) until the leg ends, including what was on its way then."""
        while not self.audio_chunks.empty():
            self.audio_chunks.get_nowait()
        while self.state == "connected":
            try:
                yield await asyncio.wait_for(self.audio_chunks.get(), 1.0)
            except TimeoutError:
                continue
        while not self.audio_chunks.empty():
            yield self.audio_chunks.get_nowait()

    def _ring_timeout(self) -> None:
        self._timer = None
        if self.state == "dialing":
            log.info("operator_no_answer", call_id=self.session.call_id, target=self.cmd.target)
            self.hangup("ring_timeout")

    def _fail(self, status_code: int | None, reason: str) -> None:
        self.state = "failed"
        self.status_code, self.reason = status_code, reason
        self.emit("failed", status_code, reason)
        log.info("operator_leg_failed", call_id=self.session.call_id, status=status_code, reason=reason)
        self._on_state(self)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _release(self) -> None:
        if self._slot:
            self._slot = False
            self.host.release_leg()

    def hangup(self, reason: str) -> None:
        """End the leg (CANCEL while ringing, BYE when connected); the outcome arrives via on_disconnected."""
        if self.call is None or self.call.disconnected or self.state in ("failed", "ended"):
            return
        self._end_reason = self._end_reason or reason
        call = self.call
        # never from inside another call's pjsua callback: the loop runs it right after
        self.loop.call_soon(self._hangup_now, call)

    def _hangup_now(self, call: SipCall) -> None:
        if call.disconnected:
            return
        with contextlib.suppress(pj.Error):
            call.hangup(pj.CallOpParam(True))

    def caller_left(self, reason: str = "caller_hangup") -> None:
        """The caller's call ended (hung up, or ended by the IVR/hub): report the leg's end now (before the
        caller's CallEnded), then end it."""
        if self.state not in ("dialing", "connected"):
            return
        state = "failed" if self.state == "dialing" else "ended"
        self._end_reason = reason
        self.state = state
        self.status_code, self.reason = None, reason
        self.emit(state, None, reason)
        call = self.call
        if call is not None and not call.disconnected:
            self.loop.call_soon(self._hangup_now, call)
