"""Blind transfer of a queued caller to the operator's phone (``ivr.operator_transfer = "refer"``).

Instead of calling the operator itself (ivr/bridge.py), the worker sends the caller's phone a REFER to the
operator's SIP URI; the caller's phone calls the operator and reports how that call goes in NOTIFYs::

    REFER ─ refused (405/501/603/...) ─▶ failed refer_refused ─▶ (ivr.refer_fallback_bridge) bridge instead
          ─ accepted ─▶ NOTIFY 1xx (dialing) ─▶ 2xx ─▶ connected ─▶ QueueLeft bridged, the worker hangs up
                                              └▶ 3xx-6xx, or nothing within the ring time ─▶ failed (busy,
                                                 no_answer, declined, ... as ivr/bridge.py), still queued

Once connected the caller talks to the operator directly: the worker's call slot is free, and nothing of the
conversation is transcribed or recorded. A transfer cannot be called back: after the worker gave up (ring time
over, the caller pressed 1) the caller's phone may still reach the operator; a late report is only logged.

The same interface as :class:`ivr.bridge.OperatorLeg` for the queue (state, start, hangup, caller_left; reports
through ``on_state``); everything runs on the worker's main thread (pjsua callbacks inside poll, or the loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pjsua2 as pj
import structlog

from ivr.bridge import CallerLine, failure_reason
from ivr.contract import REFER_REFUSED, REFER_REFUSED_BRIDGING, BridgeCommand, BridgeUpdate

log = structlog.get_logger(__name__)

#: the caller's phone needs a moment to take the REFER and place its call: the ring time starts after it
REFER_GRACE_S = 5.0


class ReferTransfer:
    """One blind transfer attempt: dialing -> connected, or dialing -> failed."""

    #: connected means the call is the operator's now: the queue ends the IVR's part (ivr/queueing.py)
    hands_over = True

    def __init__(self, session: CallerLine, cmd: BridgeCommand, node: str,
                 on_state: Callable[[ReferTransfer], None], fallback_bridge: bool = True):
        self.session = session
        self.cmd = cmd
        self.node = node
        self._on_state = on_state
        self.fallback_bridge = fallback_bridge
        self.loop = asyncio.get_running_loop()
        self.state = "dialing"
        self.status_code: int | None = None
        self.reason = ""
        self.accepted = False  # the caller's phone took the REFER: later reports are about its call to the operator
        #: the caller's phone refused the REFER and the queue is to bridge the call instead
        self.bridge_instead = False
        self.t_refer = self.loop.time()
        self.setup_s: float | None = None  # REFER sent -> the operator answered the caller's phone
        self.progress: list[int] = []  # every status reported, in order
        self._timer: asyncio.TimerHandle | None = None

    def emit(self, state: str, status_code: int | None = None, reason: str = "") -> None:
        self.session.emit(BridgeUpdate, offer_id=self.cmd.offer_id, target=self.cmd.target, state=state,
                          status_code=status_code, reason=reason)

    def start(self) -> bool:
        """Send the REFER. False (and state failed) when it cannot be sent; ``bridge_instead`` then says
        whether to bridge."""
        call = self.session.call
        if self.session.ended or call is None or call.disconnected:
            self._fail(None, "caller_hangup")
            return False
        self.emit("dialing")
        call.on_transfer_status = self._on_status
        try:
            call.xfer(self.cmd.target, pj.CallOpParam(True))
        except pj.Error as e:  # the caller's dialog cannot carry a REFER now: as good as refused
            log.warning("refer_failed", call_id=self.session.call_id, target=self.cmd.target, error=e.info())
            self._refused(None, f"refer_error: {e.reason}")
            return False
        self._timer = self.loop.call_later(self.cmd.ring_timeout_s + REFER_GRACE_S, self._ring_timeout)
        log.info("refer_sent", call_id=self.session.call_id, target=self.cmd.target, offer=self.cmd.offer_id)
        return True

    # ---- the caller's phone reports (pjsua callback, main thread) ---------------------------
    def _on_status(self, code: int, reason: str, final: bool) -> bool:
        """One transfer report; returns whether to keep the subscription (more reports wanted)."""
        self.progress.append(code)
        if self.state != "dialing":
            log.info("refer_late_report", call_id=self.session.call_id, status=code, reason=reason, state=self.state)
            return False
        if not self.accepted and code >= 300:  # the answer to the REFER itself: the phone will not transfer
            self._refused(code, reason)
            return False
        self.accepted = True
        if code < 200:
            log.info("refer_progress", call_id=self.session.call_id, status=code, reason=reason)
            return True
        if code < 300 and not final:  # the phone took the REFER (202); its call to the operator is next
            return True
        if code < 300:
            self._connected()
            return False
        self._fail(code, failure_reason(code, reason))
        return False

    # ---- outcomes -----------------------------------------------------------------------------
    def _connected(self) -> None:
        self._done()
        self.state = "connected"
        self.status_code = 200
        self.setup_s = round(self.loop.time() - self.t_refer, 3)
        self.emit("connected", 200)
        log.info("refer_connected", call_id=self.session.call_id, target=self.cmd.target, setup_s=self.setup_s)
        self._on_state(self)

    def _refused(self, code: int | None, why: str) -> None:
        log.info("refer_refused", call_id=self.session.call_id, status=code, reason=why,
                 fallback=self.fallback_bridge)
        self.bridge_instead = self.fallback_bridge
        self._fail(code, REFER_REFUSED_BRIDGING if self.fallback_bridge else REFER_REFUSED)

    def _ring_timeout(self) -> None:
        self._timer = None
        if self.state == "dialing":
            log.info("refer_no_answer", call_id=self.session.call_id, target=self.cmd.target, progress=self.progress)
            self._fail(408, "no_answer")

    def _fail(self, status_code: int | None, reason: str) -> None:
        self._done()
        self.state = "failed"
        self.status_code, self.reason = status_code, reason
        self.emit("failed", status_code, reason)
        log.info("refer_transfer_failed", call_id=self.session.call_id, status=status_code, reason=reason)
        self._on_state(self)

    def _done(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ---- the queue's side ---------------------------------------------------------------------
    def hangup(self, reason: str) -> None:
        """Stop waiting for the transfer (the caller chose a callback): reported as failed now. The caller's
        phone may still be calling the operator; a transfer cannot be cancelled."""
        if self.state == "dialing":
            self._fail(None, reason)

    def caller_left(self, reason: str = "caller_hangup") -> None:
        """The caller's call ended (runs before its CallEnded). After a transfer it is the worker's own hang-up."""
        if self.state == "dialing":
            self._done()
            self.state = "failed"
            self.status_code, self.reason = None, reason
            self.emit("failed", None, reason)
        call = self.session.call
        if call is not None:
            call.on_transfer_status = None
