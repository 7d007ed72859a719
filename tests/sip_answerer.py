"""A pjsua2 phone that answers: the operator's SIP phone in the queue tests.

    python tests/sip_answerer.py --port 5099 --modes busy,answer --play voice.wav --record-prefix /tmp/op

Each incoming call takes the next mode (the last one repeats): ``answer`` (200 after
``--answer-after`` s, plays ``--play`` in a loop, records what it hears, hangs up after ``--talk`` s
unless the other side does first), ``busy`` (486), ``ring`` (180, never answers), ``dtmf:D`` (answers,
then presses the keys D (RFC 4733) ``--dtmf-after`` s after answering and again every ``--dtmf-every`` s
until the call ends: a citizen rating a callback). ``--user NUMBER=MODE`` (repeatable) picks the mode by
the user part of the called URI instead (sip:NUMBER@...). One JSON line per INVITE when it arrives
(incoming, user, at: wall-clock time) and one per call on stdout when it ends: mode, status, connected,
duration_s, record, record_peak, dtmf (keys sent).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import signal
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pjsua2 as pj

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.audio import read_wav  # noqa: E402
from ivr.sip.call import SipCall  # noqa: E402
from ivr.sip.media_port import CallMediaPort  # noqa: E402
from ivr.sip.stack import SipStack, StackConfig  # noqa: E402
from sip_config.models import SipSettings  # noqa: E402


class Answered:
    def __init__(self, phone: Phone, call: SipCall, n: int, mode: str):
        self.phone, self.call, self.n, self.mode = phone, call, n, mode
        self.loop = asyncio.get_running_loop()
        self.port = CallMediaPort(f"op{n}", phone.rate, self.loop, self._on_audio, 40.0, batch_frames=1)
        self.pcm: list[bytes] = []
        self.t0 = 0.0
        self.connected = False
        self.media = False
        self.status = 0
        self.done = False
        self.sent: list[str] = []
        call.listener = self

    def _on_audio(self, data: bytes) -> None:
        if self.connected:
            self.pcm.append(data)

    def _loop_play(self) -> None:
        if self.phone.play_pcm and not self.done:
            self.port.playout.start(self.phone.play_pcm, lambda n, i: None if i else
                                    self.loop.call_soon_threadsafe(self._loop_play))

    def on_media_active(self, audio: pj.AudioMedia) -> None:
        if not self.media:
            self.media = True
            audio.startTransmit(self.port)
            self.port.startTransmit(audio)

    def on_digit(self, digit: str, method: str) -> None: ...

    def on_confirmed(self) -> None:
        self.connected = True
        self.t0 = time.monotonic()
        self.loop.call_later(self.phone.play_at, self._loop_play)
        if self.mode.startswith("dtmf:"):
            self.loop.call_later(self.phone.dtmf_after, self._press)
        if self.phone.talk:
            self.loop.call_later(self.phone.talk, self._hangup)

    def _press(self) -> None:
        if self.done or self.call.disconnected:
            return
        keys = self.mode.split(":", 1)[1]
        try:
            self.call.dialDtmf(keys)
            self.sent.append(keys)
        except pj.Error as e:
            print(json.dumps({"dtmf_error": e.info()}), flush=True)
        self.loop.call_later(self.phone.dtmf_every, self._press)

    def _hangup(self) -> None:
        if not self.done and not self.call.disconnected:
            with contextlib.suppress(pj.Error):
                self.call.hangup(pj.CallOpParam(True))

    def on_disconnected(self, status_code: int, reason: str) -> None:
        self.done = True
        self.port.playout.stop()
        self.port.detach_audio()
        self.status = self.status or status_code
        self.phone.finished(self)


class Phone:
    def __init__(self, args: argparse.Namespace):
        self.modes = args.modes.split(",")
        self.rate = 8000
        self.play_pcm = read_wav(Path(args.play), self.rate) if args.play else None
        self.play_at, self.talk, self.answer_after = args.play_at, args.talk, args.answer_after
        self.dtmf_after, self.dtmf_every = args.dtmf_after, args.dtmf_every
        self.by_user = dict(u.split("=", 1) for u in args.user or [])
        self.record_prefix = args.record_prefix
        sip = SipSettings(clock_rate=self.rate, transports=["udp"], codecs=["PCMA/8000", "PCMU/8000"])
        self.stack = SipStack(StackConfig(sip=sip, bind_host=args.host, bind_port=args.port, rtp_port=args.rtp_port,
                                          user_agent="operator-phone"), self.on_incoming)
        self.calls: list[Answered] = []
        self.retired: list[object] = []
        self.n = 0

    def on_incoming(self, account, prm) -> None:
        call = SipCall(account, prm.callId)
        ci = call.getInfo()
        user = ci.localUri.split("sip:", 1)[-1].split("@", 1)[0]
        mode = self.by_user.get(user) or self.modes[min(self.n, len(self.modes) - 1)]
        self.n += 1
        print(json.dumps({"incoming": self.n, "user": user, "at": time.time()}), flush=True)
        a = Answered(self, call, self.n, mode)
        self.calls.append(a)
        asyncio.get_running_loop().call_soon(self._respond, a)

    def _respond(self, a: Answered) -> None:
        op = pj.CallOpParam()
        if a.mode == "busy":
            a.status = 486
            op.statusCode = 486
            a.call.hangup(op)
        elif a.mode == "ring":
            op.statusCode = 180
            a.call.answer(op)
        else:
            op.statusCode = 180
            a.call.answer(op)
            asyncio.get_running_loop().call_later(self.answer_after, self._answer, a)

    def _answer(self, a: Answered) -> None:
        if not a.done:
            op = pj.CallOpParam()
            op.statusCode = 200
            a.call.answer(op)

    def finished(self, a: Answered) -> None:
        pcm = b"".join(a.pcm)
        out = {"n": a.n, "mode": a.mode, "status": a.status, "connected": a.connected,
               "duration_s": round(time.monotonic() - a.t0, 2) if a.t0 else 0.0,
               "record_peak": int(np.abs(np.frombuffer(pcm, dtype="<i2")).max()) if pcm else 0, "record": None,
               "dtmf": a.sent}
        if self.record_prefix and a.connected:
            path = Path(f"{self.record_prefix}-{a.n}.wav")
            with wave.open(str(path), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(self.rate)
                w.writeframes(pcm)
            out["record"] = str(path)
        print(json.dumps(out), flush=True)
        self.retired.append((a.call, a.port))

    async def run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        self.stack.start()
        print(json.dumps({"ready": True}), flush=True)
        try:
            while not stop.is_set():
                self.stack.poll(0)
                await asyncio.sleep(0.003)
        finally:
            with contextlib.suppress(Exception):
                self.stack.ep.hangupAllCalls()
            for _ in range(30):
                self.stack.poll(10)
            self.stack.stop_clock()
            self.calls.clear()
            self.retired.clear()
            gc.collect()
            self.stack.destroy()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--rtp-port", type=int, default=46000)
    p.add_argument("--modes", default="answer")
    p.add_argument("--play")
    p.add_argument("--play-at", type=float, default=0.5)
    p.add_argument("--answer-after", type=float, default=0.3)
    p.add_argument("--talk", type=float, default=0.0, help="hang up after this many seconds (0: never)")
    p.add_argument("--record-prefix")
    p.add_argument("--dtmf-after", type=float, default=1.0, help="dtmf:D mode: first keys this long after answering")
    p.add_argument("--dtmf-every", type=float, default=1.5, help="dtmf:D mode: and again this often")
    p.add_argument("--user", action="append", help="NUMBER=MODE: the mode of calls to sip:NUMBER@...")
    asyncio.run(Phone(p.parse_args()).run())


if __name__ == "__main__":
    main()
