"""Issue 6: the caller reaches the operator by blind transfer (``ivr.operator_transfer = "refer"``), with real peers.

`hotline serve` (Kamailio, one IVR worker, the hub) in refer mode; a `hotline dial` caller presses 0 and waits; an
operator on the console's websocket (tests/ops_support.Operator) goes ready and accepts the offer; the hub sends
the worker its BridgeCommand; the worker REFERs the caller's phone to the operator's phone (tests/sip_answerer.py),
the caller's phone calls it itself, and the worker hangs up its own call. Then:

- a caller whose phone follows the REFER talks to the operator directly (the phone records the caller's voice,
  the caller hears the operator's) after the worker's call has ended (cause ``transferred``); no bridged recording,
  no transcript: the trade-off of REFER;
- a caller whose phone refuses the REFER (405) is bridged instead, on the same offer (the operator never sees it
  fail);
- an operator's phone that is busy reaches the worker as the caller's phone's NOTIFY: BridgeUpdate failed
  (486, busy), the operator is set away, the caller waits on with hold music.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import wave
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from ivr.audio import read_wav
from ivr.contract import REFER_REFUSED_BRIDGING
from tests.hotline_proc import Hotline
from tests.ops_support import Operator, add_users, login_cookie
from tests.sipsupport import requires_kamailio
from tests.test_queue_calls import OperatorPhone

pytestmark = [pytest.mark.sip, requires_kamailio, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "tests" / "data" / "speech"
RATE = 8000
FRAME = RATE // 50
ACTIVE_DBFS = -45.0  # a 20 ms frame louder than this carries sound
TALK_S = 8.0  # the operator's phone hangs up this long after answering
SPEAK_AT_S = 4.0  # the caller starts talking this long after the IVR answered (transferred by then)


def rms_dbfs(pcm: np.ndarray) -> float:
    x = pcm.astype(np.float64) / 32768.0
    return round(20 * np.log10(max(1e-9, float(np.sqrt(np.mean(x * x))) if len(x) else 1e-9)), 1)


def level(pcm: np.ndarray) -> tuple[float, float]:
    """(RMS dBFS over the 20 ms frames with sound, seconds with sound)."""
    frames = pcm[:len(pcm) // FRAME * FRAME].reshape(-1, FRAME)
    loud = [f for f in frames if rms_dbfs(f) > ACTIVE_DBFS]
    return (rms_dbfs(np.concatenate(loud)) if loud else -180.0), round(len(loud) * 0.02, 2)


def wav_pcm(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def ts(e: dict) -> float:
    return datetime.fromisoformat(e["ts"]).timestamp()


class _HubAddress:
    """What tests/ops_support needs of a hub: its URL and home (the database)."""

    def __init__(self, h: Hotline):
        self.url = f"http://127.0.0.1:{h.hub_port}"
        self.home = h.home


@pytest.fixture(scope="module")
def hotline(tmp_path_factory):
    h = Hotline(tmp_path_factory.mktemp("refer") / "home", workers=1,
                extra_env={"HOTLINE_IVR__WORKING_HOURS__MODE": "open", "HOTLINE_IVR__OPERATOR_TRANSFER": "refer",
                           "HOTLINE_IVR__RECORD_BRIDGED_CALLS": "true", "HOTLINE_HUB__OFFER_TIMEOUT_S": "60",
                           "HOTLINE_LOG__LEVEL": "info"})
    h.start()
    yield h
    assert h.stop() == 0, h.proc.log()[-3000:]


@pytest.fixture
def caller_voice(tmp_path) -> Path:
    """Silence until SPEAK_AT_S, then two questions with a pause."""
    clips = [np.frombuffer(read_wav(SPEECH / n, RATE), dtype="<i2") for n in ("q02.wav", "q06.wav")]
    pcm = np.concatenate([np.zeros(int(SPEAK_AT_S * RATE), dtype="<i2"), clips[0],
                          np.zeros(int(0.6 * RATE), dtype="<i2"), clips[1]])
    path = tmp_path / "caller-voice.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return path


def operator(h: Hotline, name: str, phone: OperatorPhone) -> Operator:
    hub = _HubAddress(h)
    add_users(hub, (name, "operator", phone.uri))
    op = Operator(hub, login_cookie(hub, name))
    op.until("snapshot")
    op.send({"type": "presence", "state": "ready"})
    op.until("presence", operator__state="ready")
    return op


def dial_async(h: Hotline, *args: str) -> tuple[threading.Thread, dict]:
    out: dict = {}
    t = threading.Thread(target=lambda: out.update(h.dial(*args, timeout=60)))
    t.start()
    return t, out


def call_events(h: Hotline, call_id: str) -> tuple[dict, list[dict]]:
    with sqlite3.connect(h.home / "hotline.db") as db:
        db.row_factory = sqlite3.Row
        call = dict(db.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone())
        events = [dict(json.loads(r["payload"]), type=r["type"]) for r in db.execute(
            "SELECT type, payload FROM call_events WHERE call_id = ? ORDER BY ts, received_at", (call_id,))]
    return call, events


def wait_call_ended(h: Hotline, call_id: str, timeout: float = 10.0) -> tuple[dict, list[dict]]:
    deadline = time.monotonic() + timeout
    while True:
        call, events = call_events(h, call_id)
        if call["status"] == "ended" or time.monotonic() > deadline:
            return call, events
        time.sleep(0.2)


def calls_ended(phone: OperatorPhone) -> list[dict]:
    """The phone's report per call that ended (not its line per INVITE)."""
    return [r for r in phone.results() if "connected" in r]


def phone_rtp(k: int) -> int:
    return 52000 + (os.getpid() % 100) * 40 + k * 12


def test_refer_the_caller_talks_to_the_operator_directly_and_the_worker_drops_out(hotline, tmp_path, caller_voice):
    t0 = time.monotonic()
    h = hotline
    phone = OperatorPhone(tmp_path, "answer", play=SPEECH / "q04.wav", talk=TALK_S, rtp=phone_rtp(0))
    op = operator(h, "op_refer", phone)
    try:
        dial, caller = dial_async(h, "--dtmf", "wait:1,0", "--play", str(caller_voice), "--record",
                                  str(tmp_path / "caller-heard.wav"), "--duration", "30")
        offer = op.until("offer", timeout=20)
        call_id = offer["call_id"]
        op.send({"type": "accept", "offer_id": offer["offer_id"]})
        op.until("bridge", bridge__state="connected", timeout=15)
        # the worker's call ends as soon as the transfer is through; the operator is in wrap-up while talking
        op.until("presence", operator__state="wrap_up", timeout=10)
        call_at_handover, _ = wait_call_ended(h, call_id)
        phone_busy = not calls_ended(phone)  # the operator's phone is still talking to the caller
        dial.join(45)
    finally:
        op.close()
        phone.stop()
    call, events = call_events(h, call_id)
    bridge = [e for e in events if e["type"] == "bridge_update"]
    assert [(b["state"], b["status_code"]) for b in bridge] == [("dialing", None), ("connected", 200)], bridge
    assert bridge[0]["target"] == phone.uri and bridge[0]["offer_id"] == offer["offer_id"]
    assert [e["outcome"] for e in events if e["type"] == "queue_left"] == ["bridged"]
    (ended,) = [e for e in events if e["type"] == "call_ended"]
    assert (ended["cause"], ended["side"]) == ("transferred", "ivr"), ended
    assert call_at_handover["status"] == "ended" and call["end_cause"] == "transferred", call
    assert phone_busy, "the operator's phone had already hung up when the worker's call ended"
    types = [e["type"] for e in events]
    assert types.index("queue_joined") < types.index("bridge_update") < types.index("queue_left") < \
        types.index("call_ended"), types
    # the caller's phone followed the REFER and talked to the operator until the operator hung up
    assert caller["connected"] and caller["transfer_to"] == phone.uri and caller["transfer_answer"] == 202, caller
    assert caller["transfer_connected"] and caller["hangup_side"] == "remote", caller
    (result,) = calls_ended(phone)
    assert result["connected"] and result["duration_s"] >= TALK_S - 0.5, result
    # REFER's trade-off: the IVR heard nothing of the conversation
    assert json.loads(call["transcript"]) == []
    assert not (h.home / "recordings" / f"{call_id}-bridged.wav").exists()

    # audio both ways, after the worker's call ended
    setup_s = ts(bridge[1]) - ts(bridge[0])
    t_answer = ts(next(e for e in events if e["type"] == "call_answered"))
    t_conn = ts(bridge[1]) - t_answer
    t_gone = ts(ended) - ts(bridge[1])
    assert t_conn < SPEAK_AT_S - 0.5, f"transferred {t_conn:.1f} s after the answer: too late for the caller's words"
    caller_at_op = level(wav_pcm(Path(result["record"])))
    op_at_caller = level(wav_pcm(tmp_path / "caller-heard.wav")[int((t_conn + 1.0) * RATE):])
    print(f"\nREFER set-up {setup_s:.3f} s (REFER -> NOTIFY 200; the phone answers after 0.3 s), the worker's call "
          f"ended {t_gone:.3f} s after; caller -> operator {caller_at_op[0]} dBFS over {caller_at_op[1]} s, "
          f"operator -> caller {op_at_caller[0]} dBFS over {op_at_caller[1]} s; test {time.monotonic() - t0:.1f} s")
    assert caller_at_op[1] >= 2.0 and caller_at_op[0] > -30, caller_at_op
    assert op_at_caller[1] >= 2.0 and op_at_caller[0] > -30, op_at_caller
    assert setup_s < 2.0 and t_gone < 2.0


def test_a_phone_that_refuses_refer_is_bridged_instead_on_the_same_offer(hotline, tmp_path, caller_voice):
    t0 = time.monotonic()
    h = hotline
    phone = OperatorPhone(tmp_path, "answer", play=SPEECH / "q04.wav", talk=TALK_S, rtp=phone_rtp(1))
    op = operator(h, "op_fallback", phone)
    try:
        dial, caller = dial_async(h, "--dtmf", "wait:1,0", "--play", str(caller_voice), "--refuse-refer", "405",
                                  "--duration", "30")
        offer = op.until("offer", timeout=20)
        call_id = offer["call_id"]
        op.send({"type": "accept", "offer_id": offer["offer_id"]})
        op.until("bridge", bridge__state="connected", timeout=15)
        op.until("presence", operator__state="wrap_up", timeout=TALK_S + 10)
        dial.join(45)
    finally:
        op.close()
        phone.stop()
    call, events = wait_call_ended(h, call_id)
    bridge = [(e["state"], e["status_code"], e["reason"]) for e in events if e["type"] == "bridge_update"]
    assert bridge == [("dialing", None, ""), ("failed", 405, REFER_REFUSED_BRIDGING), ("dialing", None, ""),
                      ("connected", 200, ""), ("ended", None, "operator_hangup")], bridge
    assert {e["offer_id"] for e in events if e["type"] == "bridge_update"} == {offer["offer_id"]}
    assert [e["outcome"] for e in events if e["type"] == "queue_left"] == ["bridged"]
    assert call["end_cause"] == "operator_hangup", call
    # the hub kept the offer: no revocation, the operator went busy -> wrap-up, never back to ready in between
    assert not [e for e in op.events if e["type"] == "offer_revoked"], op.events
    states = [e["operator"]["state"] for e in op.events if e["type"] == "presence"]
    assert states[-2:] == ["busy", "wrap_up"], states
    shown = [e["bridge"] for e in op.events if e["type"] == "bridge"]
    assert "failed" not in [b["state"] for b in shown], shown
    assert caller["connected"] and caller["transfer_answer"] == 405 and not caller["transfer_connected"], caller
    (result,) = calls_ended(phone)
    caller_at_op = level(wav_pcm(Path(result["record"])))
    assert caller_at_op[1] >= 2.0 and caller_at_op[0] > -30, caller_at_op
    stereo = wav_pcm(h.home / "recordings" / f"{call_id}-bridged.wav")  # bridged: recorded as usual
    assert level(stereo[0::2])[1] >= 2.0 and level(stereo[1::2])[1] >= 2.0
    print(f"\nREFER refused (405) -> bridged on the same offer; caller -> operator {caller_at_op[0]} dBFS over "
          f"{caller_at_op[1]} s; test {time.monotonic() - t0:.1f} s")


def test_a_busy_operator_phone_reported_by_the_callers_notify_leaves_the_caller_queued(hotline, tmp_path):
    t0 = time.monotonic()
    h = hotline
    phone = OperatorPhone(tmp_path, "busy", rtp=phone_rtp(2))
    op = operator(h, "op_busy", phone)
    try:
        dial, caller = dial_async(h, "--dtmf", "wait:1,0", "--duration", "10")
        offer = op.until("offer", timeout=20)
        call_id = offer["call_id"]
        op.send({"type": "accept", "offer_id": offer["offer_id"]})
        failed = op.until("bridge", bridge__state="failed", timeout=15)["bridge"]
        op.until("presence", operator__state="away", operator__reason="bridge_failed", timeout=5)
        dial.join(30)
    finally:
        op.close()
        phone.stop()
    call, events = wait_call_ended(h, call_id)
    bridge = [(e["state"], e["status_code"], e["reason"]) for e in events if e["type"] == "bridge_update"]
    assert bridge == [("dialing", None, ""), ("failed", 486, "busy")], bridge
    assert failed["reason"] == "busy"
    assert [e["outcome"] for e in events if e["type"] == "queue_left"] == ["hangup"]  # waited on, then hung up
    assert call["end_cause"] == "caller_hangup", call
    assert caller["transfer_to"] == phone.uri and caller["transfer_status"] == 486, caller
    # the caller still hears the queue (prompt, music, position) after the failed transfer
    t_answer = ts(next(e for e in events if e["type"] == "call_answered"))
    t_failed = ts(next(e for e in events if e["type"] == "bridge_update" and e["state"] == "failed")) - t_answer
    heard = [p for t, p in caller["frames"] if t_failed + 4.0 <= t <= t_failed + 7.0]
    assert heard and sum(p > 300 for p in heard) > 0.5 * len(heard), heard
    print(f"\nbusy operator via the caller's NOTIFY: failed {t_failed:.2f} s after the answer; test "
          f"{time.monotonic() - t0:.1f} s")


def test_a_caller_cannot_make_the_hotline_place_calls_by_refer(hotline, tmp_path):
    """The worker refuses a REFER from a caller (603): following it would dial any address for anyone. (Before
    the worker answered its REFERs itself, pjsua accepted them and called the target.)"""
    phone = OperatorPhone(tmp_path, "answer", talk=2.0, rtp=phone_rtp(3))
    try:
        out = hotline.dial("--dtmf", "wait:1", "--send-refer", phone.uri, "--duration", "4", timeout=30)
        time.sleep(0.5)
    finally:
        phone.stop()
    assert out["connected"] and out["sent_refer_status"] == 603, out
    assert calls_ended(phone) == [] and not phone.results(), phone.results()
