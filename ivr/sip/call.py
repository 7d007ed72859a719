"""A pjsua2 Call that forwards its callbacks (main thread) to a listener, never raising into pjsua."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import pjsua2 as pj
import structlog

log = structlog.get_logger(__name__)

DTMF_METHODS = {pj.PJSUA_DTMF_METHOD_RFC2833: "rfc4733", pj.PJSUA_DTMF_METHOD_SIP_INFO: "sip_info"}


class CallListener(Protocol):
    def on_media_active(self, audio: pj.AudioMedia) -> None: ...
    def on_digit(self, digit: str, method: str) -> None: ...
    def on_confirmed(self) -> None: ...
    def on_disconnected(self, status_code: int, reason: str) -> None: ...


class SipCall(pj.Call):
    def __init__(self, account: pj.Account, call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(account, call_id)
        self.listener: CallListener | None = None
        self.disconnected = False
        #: progress of a REFER this call sent (ivr/refer.py): (status code, reason, final) -> want more reports
        self.on_transfer_status: Callable[[int, str, bool], bool] | None = None
        #: a REFER this call received (ivr/dial.py): set ``prm.statusCode`` (>= 300 refuses) and ``prm.newCall``
        self.on_transfer_request: Callable[[pj.OnCallTransferRequestParam], None] | None = None

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802 (pjsua2 API)
        try:
            ci = self.getInfo()  # keep the info object: inline reads of its fields hit freed memory
            if ci.state == pj.PJSIP_INV_STATE_CONFIRMED and self.listener:
                self.listener.on_confirmed()
            elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED and not self.disconnected:
                self.disconnected = True
                if self.listener:
                    self.listener.on_disconnected(ci.lastStatusCode, ci.lastReason)
        except Exception:
            log.exception("call_state_failed")

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        try:
            ci = self.getInfo()
            media = ci.media
            for i in range(len(media)):
                mi = media[i]
                if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    if self.listener:
                        self.listener.on_media_active(self.getAudioMedia(i))
                    break
        except Exception:
            log.exception("call_media_failed")

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # noqa: N802
        try:
            if self.listener:
                self.listener.on_digit(prm.digit, DTMF_METHODS.get(prm.method, "unknown"))
        except Exception:
            log.exception("dtmf_failed")

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:  # noqa: N802
        try:
            if self.on_transfer_status is not None:
                prm.cont = bool(self.on_transfer_status(int(prm.statusCode), prm.reason, bool(prm.finalNotify)))
        except Exception:
            log.exception("transfer_status_failed")

    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:  # noqa: N802
        try:
            if self.on_transfer_request is not None:
                self.on_transfer_request(prm)
            else:  # nobody here would carry the new call's audio: refuse rather than reuse this object
                prm.statusCode = 603
        except Exception:
            log.exception("transfer_request_failed")
            prm.statusCode = 500
