"""The operator queue on real calls: a real IVR worker, a stand-in hub, a pjsua2 caller and a pjsua2
operator phone on loopback. Hold music, position announcements, the bridge to the operator (audio
both ways, stereo recording), an operator who is busy or does not answer, callback by pressing 1,
and the after-hours message."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.contract import BridgeCommand, HangupCommand, QueueStatus
from tests.fake_hub import FakeHub
from tests.hotline_proc import HOTLINE, _EnvProc, sip_ping
from tests.sipsupport import Proc, free_rtp_base, free_udp_port

pytestmark = [pytest.mark.sip]

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "tests" / "data" / "speech"
TOKEN = "queue-test-token-" + "x" * 16
LOUD = 1000  # a 20 ms frame with a peak above this is sound, not line noise


class Line:
    """A stand-in hub and one IVR worker listening directly on a SIP port."""

    def __init__(self, home: Path, **env: str):
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.hub = FakeHub(free_udp_port(), TOKEN).start()
        self.sip_port = free_udp_port()
        base = free_rtp_base(16)
        self.rtp = base
        self.env = dict(os.environ)
        self.env.pop("HOTLINE_CONFIG", None)
        self.env.update({"HOTLINE_HOME": str(home), "HOTLINE_HUB__PUBLIC_URL": self.hub.url,
                         "HOTLINE_HUB__WORKER_TOKEN": TOKEN, "HOTLINE_SIP__RTP_PORT_START": str(base),
                         "HOTLINE_SIP__RTP_PORTS_PER_WORKER": "16", "HOTLINE_SPEECH__ENABLED": "false",
                         "HOTLINE_IVR__WORKING_HOURS__MODE": "open", **env})
        self.proc = _EnvProc("worker", HOTLINE + ["worker", "--single-port", str(self.sip_port)],
                             home / "worker.log", ROOT, self.env).start()
        deadline = time.monotonic() + 20
        while sip_ping(self.sip_port) != 200:
            if not self.proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"worker not up:\n{self.proc.log()[-3000:]}")
            time.sleep(0.2)
        self.hub.wait_worker("w0")

    @property
    def uri(self) -> str:
        return f"sip:12368@127.0.0.1:{self.sip_port}"

    def dial(self, *args: str) -> dict:
        frames = self.home / f"frames-{uuid.uuid4().hex[:6]}.json"
        rtp = str(self.rtp + 40 + (int(uuid.uuid4().int % 5) * 4))
        import subprocess

        r = subprocess.run(HOTLINE + ["dial", self.uri, "--frames-json", str(frames), "--rtp-port", rtp, *args],
                           env=self.env, capture_output=True, text=True, timeout=120)
        assert r.stdout.strip(), r.stderr[-2000:]
        out = json.loads(r.stdout.strip().splitlines()[-1])
        out["frames"] = json.loads(frames.read_text()) if frames.exists() else []
        return out

    def dial_async(self, *args: str) -> tuple[threading.Thread, dict]:
        result: dict = {}
        t = threading.Thread(target=lambda: result.update(self.dial(*args)))
        t.start()
        return t, result

    def new_call(self, before: set[str], timeout: float = 15.0) -> str:
        e = self.hub.wait(lambda e: e["type"] == "call_answered" and e["call_id"] not in before, timeout,
                          "answered call")
        return e["call_id"]

    def call_ids(self) -> set[str]:
        return {e["call_id"] for e in self.hub.events if "call_id" in e}

    def stop(self) -> int | None:
        code = self.proc.stop(15)
        self.hub.stop()
        return code


class OperatorPhone(Proc):
    def __init__(self, home: Path, modes: str, play: Path | None = None, talk: float = 0.0, rtp: int = 47000):
        self.port = free_udp_port()
        argv = [sys.executable, str(ROOT / "tests" / "sip_answerer.py"), "--port", str(self.port), "--modes", modes,
                "--rtp-port", str(rtp), "--record-prefix", str(home / f"operator-{self.port}"), "--talk", str(talk)]
        if play:
            argv += ["--play", str(play)]
        super().__init__("operator", argv, home / f"operator-{self.port}.log", ROOT)
        self.start()
        deadline = time.monotonic() + 10
        while '"ready"' not in self.log():
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"operator phone not up:\n{self.log()[-2000:]}")
            time.sleep(0.1)
        time.sleep(0.2)

    @property
    def uri(self) -> str:
        return f"sip:operator1@127.0.0.1:{self.port}"

    def results(self) -> list[dict]:
        return [json.loads(x) for x in self.log().splitlines() if x.startswith("{") and '"mode"' in x]


@pytest.fixture(scope="module")
def line(tmp_path_factory):
    ln = Line(tmp_path_factory.mktemp("queue"), HOTLINE_IVR__RECORD_BRIDGED_CALLS="true")
    yield ln
    assert ln.stop() == 0, ln.proc.log()[-3000:]


def peaks_between(frames: list, t0: float, t1: float) -> list[int]:
    return [p for t, p in frames if t0 <= t <= t1]


def rms_dbfs(pcm: np.ndarray) -> float:
    x = pcm.astype(np.float64) / 32768.0
    return round(20 * np.log10(max(1e-9, float(np.sqrt(np.mean(x * x))))), 1)


def wav_pcm(path: Path) -> tuple[np.ndarray, int, int]:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate(), w.getnchannels()


def event_time(e: dict) -> float:
    from datetime import datetime

    return datetime.fromisoformat(e["ts"]).timestamp()


def test_queue_announcement_and_bridge_to_the_operator_with_audio_both_ways(line, tmp_path):
    hub = line.hub
    phone = OperatorPhone(tmp_path, "answer", play=SPEECH / "q04.wav", talk=9.0, rtp=line.rtp + 60)
    try:
        before = line.call_ids()
        # '0' interrupts the welcome: straight to the operator queue. The caller speaks (q02) at 17 s.
        t, caller = line.dial_async("--dtmf", "wait:1,0", "--record", str(tmp_path / "caller.wav"),
                                    "--play", str(SPEECH / "q02.wav"), "--play-at", "17", "--duration", "40")
        call_id = line.new_call(before)
        joined = hub.wait(lambda e: e["type"] == "queue_joined" and e["call_id"] == call_id, 10, "queue_joined")
        time.sleep(4.5)  # handoff prompt (~3 s), then hold music
        hub.send("w0", QueueStatus(call_id=call_id, position=2, operators_ready=0))
        hub.wait(lambda e: e["type"] == "prompt_played" and e["call_id"] == call_id
                 and e["prompt"] == "queue_position:2", 15, "position announcement")
        time.sleep(1.5)  # hold music again
        hub.send("w0", BridgeCommand(call_id=call_id, offer_id="offer-1", target=phone.uri, ring_timeout_s=10))
        connected = hub.wait(lambda e: e["type"] == "bridge_update" and e["call_id"] == call_id
                             and e["state"] == "connected", 15, "bridge connected")
        t.join(60)
        hub.wait(lambda e: e["type"] == "call_ended" and e["call_id"] == call_id, 10, "call_ended")
    finally:
        phone.stop()
    events = hub.of_call(call_id)
    types = [e["type"] for e in events]
    bridge = [(e["state"], e.get("status_code")) for e in events if e["type"] == "bridge_update"]
    assert bridge == [("dialing", None), ("connected", 200), ("ended", None)], bridge
    assert [e["outcome"] for e in events if e["type"] == "queue_left"] == ["bridged"]
    assert types.index("queue_joined") < types.index("bridge_update") < types.index("queue_left")
    ended = [e for e in events if e["type"] == "bridge_update" and e["state"] == "ended"][0]
    assert ended["reason"] == "operator_hangup"
    call_end = [e for e in events if e["type"] == "call_ended"][0]
    assert call_end["cause"] == "operator_hangup" and types.index("bridge_update") < types.index("call_ended")
    dialing = [e for e in events if e["type"] == "bridge_update" and e["state"] == "dialing"][0]
    setup_s = event_time(connected) - event_time(dialing)

    assert caller["connected"] and caller["hangup_side"] == "remote", caller
    frames = caller["frames"]
    # the times of the events relative to the caller's answer
    t_answer = event_time(next(e for e in events if e["type"] == "call_answered"))
    t_join = event_time(joined) - t_answer
    t_conn = event_time(connected) - t_answer
    music = peaks_between(frames, t_join + 3.5, t_join + 4.4)  # after the handoff prompt, before the status
    assert music and min(music) > 300 and max(music) < 16000, music  # soft but continuous
    # the operator's voice (q04, starting 0.5 s after the answer) reaches the caller
    op_heard = peaks_between(frames, t_conn + 0.8, t_conn + 3.5)
    assert sum(p > LOUD for p in op_heard) > 40, op_heard

    results = phone.results()
    assert len(results) == 1 and results[0]["connected"], results
    op_pcm, rate, _ = wav_pcm(Path(results[0]["record"]))
    # the caller's voice (q02 at 17 s after the answer) reaches the operator
    start = int((17 - t_conn + 0.3) * rate)
    caller_at_operator = op_pcm[start:start + 2 * rate]
    assert len(caller_at_operator) and np.abs(caller_at_operator).max() > LOUD

    stereo, srate, channels = wav_pcm(line.home / "recordings" / f"{call_id}-bridged.wav")
    assert channels == 2 and srate == 8000
    left, right = stereo[0::2], stereo[1::2]
    assert np.abs(left).max() > LOUD and np.abs(right).max() > LOUD
    caller_pcm, _, _ = wav_pcm(tmp_path / "caller.wav")
    i0 = int((t_conn + 0.8) * 8000)
    from ivr.audio import read_wav

    def source(name: str) -> float:  # the same 2 s of the clip as sent, for comparison
        pcm = np.frombuffer(read_wav(SPEECH / name, 8000), dtype="<i2")
        return rms_dbfs(pcm[int(0.3 * 8000):int(2.3 * 8000)])

    print(f"\nbridge: set-up {setup_s:.2f} s (dial -> connected, operator answers after 0.3 s); "
          f"operator->caller {rms_dbfs(caller_pcm[i0:i0 + 2 * 8000])} dBFS RMS at the caller (sent "
          f"{source('q04.wav')}), caller->operator {rms_dbfs(caller_at_operator)} dBFS RMS at the operator (sent "
          f"{source('q02.wav')}); stereo recording "
          f"{len(left) / srate:.1f} s, left {rms_dbfs(left)} dBFS, right {rms_dbfs(right)} dBFS")
    assert setup_s < 2.0


def test_busy_and_unanswered_operators_leave_the_caller_queued_then_the_caller_hangs_up_mid_bridge(line, tmp_path):
    hub = line.hub
    phone = OperatorPhone(tmp_path, "busy,ring,answer", play=SPEECH / "q13.wav", rtp=line.rtp + 70)
    try:
        before = line.call_ids()
        t, caller = line.dial_async("--dtmf", "wait:1,0", "--duration", "14")
        call_id = line.new_call(before)
        hub.wait(lambda e: e["type"] == "queue_joined" and e["call_id"] == call_id, 10, "queue_joined")
        hub.send("w0", BridgeCommand(call_id=call_id, offer_id="o-busy", target=phone.uri, ring_timeout_s=5))
        busy = hub.wait(lambda e: e["type"] == "bridge_update" and e.get("offer_id") == "o-busy"
                        and e["state"] == "failed", 10, "busy")
        hub.send("w0", BridgeCommand(call_id=call_id, offer_id="o-ring", target=phone.uri, ring_timeout_s=3))
        ring = hub.wait(lambda e: e["type"] == "bridge_update" and e.get("offer_id") == "o-ring"
                        and e["state"] == "failed", 10, "no answer")
        time.sleep(2.5)  # still queued: hold music
        hub.send("w0", BridgeCommand(call_id=call_id, offer_id="o-ok", target=phone.uri, ring_timeout_s=5))
        hub.wait(lambda e: e["type"] == "bridge_update" and e.get("offer_id") == "o-ok"
                 and e["state"] == "connected", 10, "connected")
        t.join(40)  # the caller hangs up while talking to the operator
        hub.wait(lambda e: e["type"] == "call_ended" and e["call_id"] == call_id, 10, "call_ended")
        deadline = time.monotonic() + 10
        while len(phone.results()) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        phone.stop()
    assert (busy["status_code"], busy["reason"]) == (486, "busy"), busy
    assert (ring["status_code"], ring["reason"]) == (408, "no_answer"), ring
    events = hub.of_call(call_id)
    assert [e["outcome"] for e in events if e["type"] == "queue_left"] == ["bridged"]
    t_answer = event_time(next(e for e in events if e["type"] == "call_answered"))
    t_ring_failed = event_time(ring) - t_answer
    music = peaks_between(caller["frames"], t_ring_failed + 0.3, t_ring_failed + 2.0)
    assert music and min(music) > 300, "hold music did not go on after the failed offers"
    assert caller["hangup_side"] == "local"
    ok = [e for e in events if e["type"] == "bridge_update" and e["offer_id"] == "o-ok"]
    assert [(e["state"], e["reason"]) for e in ok] == [("dialing", ""), ("connected", ""), ("ended", "caller_hangup")]
    types = [e["type"] for e in events]
    last_bridge = len(types) - 1 - types[::-1].index("bridge_update")
    assert last_bridge < types.index("call_ended")  # the leg's end is reported before the caller's CallEnded
    results = phone.results()
    assert [r["mode"] for r in results] == ["busy", "ring", "answer"], results
    assert results[2]["connected"] and results[2]["duration_s"] > 2  # the worker hung the operator up too


def test_the_hub_can_end_a_call(line):
    before = line.call_ids()
    t, caller = line.dial_async("--dtmf", "wait:1,0", "--duration", "20")
    call_id = line.new_call(before)
    line.hub.wait(lambda e: e["type"] == "queue_joined" and e["call_id"] == call_id, 10, "queue_joined")
    line.hub.send("w0", HangupCommand(call_id=call_id, reason="supervisor"))
    t.join(30)
    ended = line.hub.wait(lambda e: e["type"] == "call_ended" and e["call_id"] == call_id, 10, "call_ended")
    assert ended["cause"] == "hub_hangup" and caller["hangup_side"] == "remote" and caller["duration_s"] < 10
    assert [e["outcome"] for e in line.hub.of_call(call_id, "queue_left")] == ["hangup"]


def test_pressing_1_leaves_a_callback_request_with_a_message(line, tmp_path):
    hub = line.hub
    before = line.call_ids()
    # 1 at 7 s (in the queue), the callback prompt (~5.5 s) and beep, then the caller speaks at 15 s
    t, caller = line.dial_async("--dtmf", "wait:1,0,wait:6,1", "--play", str(SPEECH / "q04.wav"), "--play-at", "15",
                                "--duration", "40")
    call_id = line.new_call(before)
    t.join(60)
    msg = hub.wait(lambda e: e["type"] == "message_recorded" and e["call_id"] == call_id, 15, "message")
    hub.wait(lambda e: e["type"] == "call_ended" and e["call_id"] == call_id, 10, "call_ended")
    events = hub.of_call(call_id)
    assert [e["outcome"] for e in events if e["type"] == "queue_left"] == ["callback"]
    assert msg["purpose"] == "callback" and msg["recording"] == f"{call_id}-callback.wav"
    pcm, rate, _ = wav_pcm(line.home / "recordings" / msg["recording"])
    assert 4 < msg["duration_s"] < 12 and np.abs(pcm).max() > LOUD, msg
    assert caller["hangup_side"] == "remote"
    ended = [e for e in events if e["type"] == "call_ended"][0]
    assert ended["cause"] == "queue_callback" and ended["side"] == "ivr"
    played = [e["prompt"] for e in events if e["type"] == "prompt_played"]
    assert played[-3:] == ["callback_message", "beep", "callback_goodbye"], played


def test_after_hours_the_caller_leaves_a_message(tmp_path):
    closed = Line(tmp_path / "closed", HOTLINE_IVR__WORKING_HOURS__MODE="closed")
    try:
        before = closed.call_ids()
        # the after-hours prompt (~5.5 s) and beep; the caller speaks at 8 s and presses # at 13 s
        t, caller = closed.dial_async("--dtmf", "wait:1,0,wait:11.5,#", "--play", str(SPEECH / "q02.wav"),
                                      "--play-at", "8", "--duration", "40")
        call_id = closed.new_call(before)
        t.join(60)
        msg = closed.hub.wait(lambda e: e["type"] == "message_recorded" and e["call_id"] == call_id, 15, "message")
        events = closed.hub.of_call(call_id)
        assert [e["outcome"] for e in events if e["type"] == "queue_left"] == ["after_hours"]
        assert "queue_joined" not in [e["type"] for e in events]
        assert msg["purpose"] == "after_hours" and 3 < msg["duration_s"] < 8, msg
        pcm, rate, _ = wav_pcm(closed.home / "recordings" / msg["recording"])
        assert np.abs(pcm).max() > LOUD
        assert caller["hangup_side"] == "remote"
    finally:
        assert closed.stop() == 0
