"""A small pjsua2 softphone: call a URI, play a WAV, send DTMF, record what comes back.

For admins smoke-testing a deployment and for the tests. The recording is written from our own
media port with an arrival time per frame, so tests can time barge-in from the caller's side.

Like a desk phone it follows a blind transfer: a REFER from the far end is accepted, the softphone calls
the Refer-To target itself, and that call carries the same voice and recording (the first call usually
ends right after, hung up by whoever transferred). ``refuse_refer`` answers REFERs with that status
instead (405, 501, 603: a phone that does not do transfers). ``send_refer`` does the opposite after the
keypad script: asks the far end to transfer us (a hotline must refuse: it would place calls for anyone).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import wave
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pjsua2 as pj
import structlog

from ivr.audio import read_wav
from ivr.sip.call import SipCall
from ivr.sip.media_port import CallMediaPort
from ivr.sip.stack import SipStack, StackConfig
from sip_config.models import SipSettings

log = structlog.get_logger(__name__)


@dataclass
class DialResult:
    uri: str
    status_code: int = 0
    reason: str = ""
    connected: bool = False
    answered_after_s: float | None = None
    answered_unix: float | None = None  # wall clock of the answer (t = 0 of ``frames``), to align with call events
    play_started_s: float | None = None  # --play's first frame went out this long after the answer
    sip_call_id: str = ""
    duration_s: float = 0.0
    hangup_side: str = ""
    digits: list[dict] = field(default_factory=list)  # {"digit", "t"}: t seconds after answer
    record: str | None = None
    record_s: float = 0.0
    record_peak: int = 0
    #: (t seconds after answer, peak) per received 20 ms frame; for barge-in timing
    frames: list[tuple[float, int]] = field(default_factory=list)
    #: a REFER received: its target, what we answered, and how the call to the target went
    transfer_to: str | None = None
    transfer_answer: int | None = None
    transfer_connected: bool = False
    transfer_after_s: float | None = None  # REFER received -> the target's call confirmed
    transfer_status: int | None = None
    #: ``send_refer``: the far end's final answer to our REFER (or the final NOTIFY of the call it placed)
    sent_refer_status: int | None = None
    #: the call's audio went as SRTP (RTP/SAVP with SDES keys), from pjsua's stream info
    srtp: bool = False

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("frames")
        return d


def parse_dtmf_script(script: str) -> list[tuple[str, float | str]]:
    """``"1,wait:2,3#"`` -> [("digits","1"), ("wait",2.0), ("digits","3#")]."""
    steps: list[tuple[str, float | str]] = []
    for part in filter(None, (p.strip() for p in script.split(","))):
        if part.startswith("wait:"):
            steps.append(("wait", float(part[5:])))
        elif set(part) <= set("0123456789*#ABCD"):
            steps.append(("digits", part))
        else:
            raise ValueError(f"bad DTMF step {part!r}: use digits 0-9*#A-D or wait:SECONDS")
    return steps


class _Listener:
    def __init__(self, dialer: Dialer):
        self.d = dialer

    def on_media_active(self, audio: pj.AudioMedia) -> None:
        self.d.on_media(audio)

    def on_digit(self, digit: str, method: str) -> None: ...

    def on_confirmed(self) -> None:
        self.d.answered.set()

    def on_disconnected(self, status_code: int, reason: str) -> None:
        self.d.on_disconnected(status_code, reason)


class _TransferListener:
    """The call a REFER made us place: same media port, its end ends the dial."""

    def __init__(self, dialer: Dialer):
        self.d = dialer
        self._media = False

    def on_media_active(self, audio: pj.AudioMedia) -> None:
        if not self._media:
            self._media = True
            audio.startTransmit(self.d.port)
            self.d.port.startTransmit(audio)

    def on_digit(self, digit: str, method: str) -> None: ...

    def on_confirmed(self) -> None:
        r = self.d.result
        r.transfer_connected = True
        r.transfer_status = 200
        r.transfer_after_s = round(time.monotonic() - self.d.t_refer, 3)

    def on_disconnected(self, status_code: int, reason: str) -> None:
        r = self.d.result
        if not r.transfer_connected:
            r.transfer_status = status_code
        elif not r.hangup_side:
            r.hangup_side = "remote"
        self.d.xfer_done = True
        if self.d.call is None or self.d.call.disconnected:
            self.d.ended.set()


class Dialer:
    def __init__(self, uri: str, play: Path | None, dtmf: str, record: Path | None, duration: float,
                 dtmf_method: str = "rfc4733", clock_rate: int = 8000, local_port: int = 0,
                 rtp_port: int = 40000, source_host: str = "127.0.0.1", digit_gap_s: float = 0.25,
                 play_at: float = 0.0, refuse_refer: int = 0, send_refer: str | None = None,
                 tls: bool = False, srtp: bool = False, on_result: Callable[[DialResult], None] | None = None):
        if tls and "transport=tls" not in uri.lower() and not uri.lower().startswith("sips:"):
            uri += ";transport=tls"
        self.uri, self.play_path, self.record_path = uri, play, record
        self.steps = parse_dtmf_script(dtmf)
        self.duration, self.dtmf_method, self.rate, self.gap = duration, dtmf_method, clock_rate, digit_gap_s
        self.result = DialResult(uri=uri, record=str(record) if record else None)
        self.play_at = play_at
        self.play_pcm = read_wav(play, clock_rate) if play else None  # a bad file fails before dialing
        sip = SipSettings(clock_rate=clock_rate, transports=["udp"], codecs=["PCMA/8000", "PCMU/8000"],
                          srtp="mandatory" if srtp else "off")
        self.stack = SipStack(StackConfig(sip=sip, bind_host=source_host, bind_port=local_port,
                                          rtp_port=rtp_port, user_agent="hotline-dial", tls=tls), self._refuse)
        self.answered = asyncio.Event()
        self.ended = asyncio.Event()
        self.call: SipCall | None = None
        self.port: CallMediaPort | None = None
        self._t0 = 0.0
        self._pcm: list[bytes] = []
        self._media = False
        self.refuse_refer = refuse_refer
        #: told the result before the SIP stack is torn down (a crash in pjsua's teardown must not lose it)
        self.on_result = on_result
        self.send_refer = send_refer
        self.xfer_call: SipCall | None = None
        self.xfer_done = False
        self.t_refer = 0.0
        self._old_calls: list[SipCall] = []

    def _refuse(self, account, prm) -> None:
        c = SipCall(account, prm.callId)
        op = pj.CallOpParam()
        op.statusCode = 486
        c.hangup(op)

    def on_media(self, audio: pj.AudioMedia) -> None:
        if self._media:
            return
        self._media = True
        with contextlib.suppress(Exception):
            self.result.srtp = self.call.getStreamInfo(0).proto == pj.PJMEDIA_TP_PROTO_RTP_SAVP
        audio.startTransmit(self.port)
        self.port.startTransmit(audio)
        if self.play_pcm:
            asyncio.get_running_loop().call_later(self.play_at, self._start_play)

    def _start_play(self) -> None:
        if self.port is None:
            return
        self.port.playout.start(self.play_pcm, lambda n, i: None)
        if self._t0:
            self.result.play_started_s = round(time.monotonic() - self._t0, 4)

    def _on_audio(self, data: bytes) -> None:
        if not self._t0:
            return
        peak = int(np.abs(np.frombuffer(data, dtype="<i2")).max()) if data else 0
        self.result.frames.append((round(time.monotonic() - self._t0, 4), peak))
        self._pcm.append(data)

    def on_transfer_request(self, prm: pj.OnCallTransferRequestParam) -> None:
        """A REFER on our call (main thread): refuse it, or let pjsua place the call with our own Call object."""
        self.result.transfer_to = prm.dstUri
        if self.refuse_refer or (self.xfer_call is not None and not self.xfer_done):
            prm.statusCode = self.refuse_refer or 603
            self.result.transfer_answer = prm.statusCode
            return
        if self.xfer_call is not None:  # an earlier transfer failed: keep its objects until the end
            self._old_calls.append(self.xfer_call)
        self.t_refer = time.monotonic()
        self.xfer_done = False
        self.result.transfer_connected, self.result.transfer_status, self.result.transfer_after_s = False, None, None
        self.xfer_call = SipCall(self.stack.accounts[0])
        self.xfer_call.listener = _TransferListener(self)
        prm.newCall = self.xfer_call
        self.result.transfer_answer = 202

    def on_disconnected(self, code: int, reason: str) -> None:
        if not self.result.connected:
            self.result.status_code, self.result.reason = code, reason
        if self.xfer_call is not None and not self.xfer_done:
            return  # transferred: the call to the target goes on (and decides when the dial ends)
        if not self.result.hangup_side:
            self.result.hangup_side = "remote"
        self.ended.set()

    async def _poll(self) -> None:
        while True:
            self.stack.poll(0)
            await asyncio.sleep(0.002)

    def _send(self, digits: str) -> None:
        if self.dtmf_method == "sip_info":
            prm = pj.CallSendDtmfParam()
            prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
            prm.digits = digits
            prm.duration = 160
            self.call.sendDtmf(prm)
        else:
            self.call.dialDtmf(digits)

    async def _script(self) -> None:
        for kind, value in self.steps:
            if kind == "wait":
                await asyncio.sleep(float(value))
                continue
            for d in str(value):
                self.result.digits.append({"digit": d, "t": round(time.monotonic() - self._t0, 4)})
                self._send(d)
                await asyncio.sleep(self.gap)
        if self.send_refer:
            self.call.on_transfer_status = self._sent_refer_status
            self.call.xfer(self.send_refer, pj.CallOpParam(True))

    def _sent_refer_status(self, code: int, reason: str, final: bool) -> bool:
        if final:
            self.result.sent_refer_status = code
        return not final

    async def run(self, ring_timeout: float = 15.0) -> DialResult:
        loop = asyncio.get_running_loop()
        self.stack.start()
        poller = loop.create_task(self._poll())
        start = time.monotonic()
        try:
            self.port = CallMediaPort("dial", self.rate, loop, self._on_audio, 40.0, batch_frames=1)
            self.call = SipCall(self.stack.accounts[0])
            self.call.listener = _Listener(self)
            self.call.on_transfer_request = self.on_transfer_request
            self.call.makeCall(self.uri, pj.CallOpParam(True))
            done = asyncio.ensure_future(self.ended.wait())
            ans = asyncio.ensure_future(self.answered.wait())
            await asyncio.wait({done, ans}, timeout=ring_timeout, return_when=asyncio.FIRST_COMPLETED)
            if self.answered.is_set() and not self.ended.is_set():
                self._t0 = time.monotonic()
                self.result.answered_unix = time.time()
                with contextlib.suppress(Exception):
                    self.result.sip_call_id = self.call.getInfo().callIdString
                self.result.connected = True
                self.result.status_code, self.result.reason = 200, "OK"
                self.result.answered_after_s = round(self._t0 - start, 3)
                script = loop.create_task(self._script())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.ended.wait(), self.duration)
                script.cancel()
                self.result.duration_s = round(time.monotonic() - self._t0, 3)
            if not self.ended.is_set():
                if self.result.connected:
                    self.result.hangup_side = "local"
                elif not self.result.status_code:
                    self.result.status_code, self.result.reason = 408, "no answer"
                for c in (self.call, self.xfer_call):
                    if c is not None and not c.disconnected:
                        with contextlib.suppress(Exception):
                            c.hangup(pj.CallOpParam(True))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.ended.wait(), 3.0)
            for t in (done, ans):
                t.cancel()
        finally:
            await asyncio.sleep(0.3)
            poller.cancel()
            self._write_recording()
            if self.on_result is not None:
                self.on_result(self.result)
            if self.call is not None:
                self.call.on_transfer_request = self.call.on_transfer_status = None
            self.stack.stop_clock()
            self.port = None
            self.call = None
            self.xfer_call = None
            self._old_calls.clear()
            gc.collect()
            self.stack.destroy()
        return self.result

    def _write_recording(self) -> None:
        pcm = b"".join(self._pcm)
        self.result.record_s = round(len(pcm) / (2 * self.rate), 3)
        if pcm:
            self.result.record_peak = int(np.abs(np.frombuffer(pcm, dtype="<i2")).max())
        if self.record_path:
            self.record_path.parent.mkdir(parents=True, exist_ok=True)
            with wave.open(str(self.record_path), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(self.rate)
                w.writeframes(pcm)


def dial(uri: str, **kw) -> DialResult:
    ring_timeout = kw.pop("ring_timeout", 15.0)

    async def main() -> DialResult:
        return await Dialer(uri, **kw).run(ring_timeout)

    return asyncio.run(main())
