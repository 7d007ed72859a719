"""Real calls into the real hotline (Kamailio + workers + hub) from real SIP peers on loopback."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
import pytest

from ivr.settings import BUNDLED_PROMPTS
from tests.baresip_peer import Baresip, requires_baresip
from tests.hotline_proc import Hotline
from tests.sipsupport import link_pcaps, requires_kamailio, requires_sipp, sipp_call

pytestmark = [pytest.mark.sip, requires_kamailio]


def voiced_span(peaks: list[int], threshold: int = 600) -> tuple[int, int]:
    """First and last index of frames louder than ``threshold``."""
    loud = [i for i, p in enumerate(peaks) if p > threshold]
    return (loud[0], loud[-1]) if loud else (-1, -1)


def wav_frame_peaks(path: Path, rate_out: int = 8000) -> list[int]:
    from ivr.audio import read_wav

    pcm = np.frombuffer(read_wav(path, rate_out), dtype="<i2")
    n = len(pcm) // (rate_out // 50)
    return [int(np.abs(f).max()) for f in pcm[: n * (rate_out // 50)].reshape(n, -1)]


@pytest.fixture(scope="module")
def hotline(tmp_path_factory):
    h = Hotline(tmp_path_factory.mktemp("hotline"), workers=2).start()
    yield h
    code = h.stop()
    assert code == 0, h.proc.log()[-3000:]


def test_welcome_is_heard_and_the_menu_walked_by_keypad(hotline, tmp_path):
    rec = tmp_path / "call.wav"
    out = hotline.dial("--record", str(rec), "--dtmf", "wait:2,1,wait:2,2,wait:1,123456#", "--duration", "14")
    assert out["connected"] and out["record_peak"] > 3000, out
    with wave.open(str(rec)) as w:
        assert w.getnframes() / w.getframerate() == pytest.approx(14, abs=0.3)
    calls = hotline.wait_calls(lambda c: c and c[0]["status"] == "ended")
    call = calls[0]
    assert call["menu_path"][:3] == ["welcome", "main", "case_query"], call
    assert call["digits"] == "12123456#"
    assert call["end_cause"] == "caller_hangup" and call["end_side"] == "caller"
    assert call["prompts"][0] == "welcome"
    assert call["worker"] in ("w0", "w1") and call["answered_at"]


def write_menu(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def probe_hotline(tmp_path_factory):
    """One worker with a test menu: the welcome alone, or a long prompt a digit can interrupt."""
    home = tmp_path_factory.mktemp("probe")
    menu = write_menu(home / "menu.yaml", """
start: entry
nodes:
  entry:
    - gather: {prompt: beep, choices: {"1": welcome_only, "2": barge}, timeout: 3, retries: 0}
  welcome_only:
    - pause: 1
    - play: {prompt: welcome, barge_in: false}
    - pause: 1.5
    - hangup
  barge:
    - pause: 1
    - gather: {prompt: main_menu, choices: {"5": after}, timeout: 5, retries: 0}
  after:
    - pause: 3
    - hangup
""")
    h = Hotline(home, workers=1, menu=menu).start()
    yield h
    h.stop()


def test_recording_holds_the_welcome_prompt_at_its_length(probe_hotline, tmp_path):
    out = probe_hotline.dial("--dtmf", "1", "--record", str(tmp_path / "w.wav"), "--duration", "30")
    assert out["connected"] and out["hangup_side"] == "remote", out
    peaks = [p for _, p in out["frames"]]
    start, end = voiced_span(peaks)
    heard_s = (end - start + 1) * 0.02
    f_start, f_end = voiced_span(wav_frame_peaks(BUNDLED_PROMPTS / "welcome.wav"))
    file_s = (f_end - f_start + 1) * 0.02
    print(f"\nwelcome prompt: file {file_s:.2f} s voiced, heard {heard_s:.2f} s in the recording")
    assert heard_s == pytest.approx(file_s, abs=0.1)
    assert file_s > 3


def test_barge_in_a_digit_stops_the_prompt_within_100_ms(probe_hotline):
    # the long menu prompt starts ~1 s after the call is answered; the digit comes 1 s into it
    out = probe_hotline.dial("--dtmf", "2,wait:2.0,5", "--duration", "8")
    assert out["connected"], out
    frames = out["frames"]
    t_digit = next(d["t"] for d in out["digits"] if d["digit"] == "5")
    prompt_start = next(t for t, p in frames if t > 0.5 and p > 600)
    assert t_digit - prompt_start == pytest.approx(1.0, abs=0.35), (t_digit, prompt_start)
    assert any(p > 600 for t, p in frames if t_digit - 0.3 <= t <= t_digit), "the prompt was not playing"
    # the prompt stopped at the start of the first silent half second after the digit
    silent_run, t_stop = 0, None
    for t, p in frames:
        if t < t_digit - 0.1:
            continue
        if p <= 600:
            silent_run += 1
            if silent_run == 1:
                t_stop = t
            if silent_run >= 25:
                break
        else:
            silent_run, t_stop = 0, None
    assert t_stop is not None
    latency_ms = (t_stop - t_digit) * 1000
    print(f"\nbarge-in: digit sent at {t_digit:.3f} s, prompt silent from {t_stop:.3f} s: {latency_ms:.0f} ms "
          "(includes RTP transit and the caller's jitter buffer)")
    assert latency_ms < 100
    call = probe_hotline.wait_calls(lambda c: c and c[0]["status"] == "ended")[0]
    assert call["menu_path"] == ["entry", "barge", "after"]


def digit_methods(hotline: Hotline, call_id: str) -> list[tuple[str, str]]:
    """(digit, method) of a call, read from the hub's SQLite file."""
    import json
    import sqlite3

    with sqlite3.connect(hotline.home / "hotline.db") as db:
        rows = db.execute("SELECT payload FROM call_events WHERE call_id = ? AND type = 'digits_received' "
                          "ORDER BY ts", (call_id,)).fetchall()
    return [(p["digits"], p["method"]) for p in (json.loads(r[0]) for r in rows)]


@requires_sipp
@pytest.mark.parametrize("scenario,method", [("uac_dtmf_2833.xml", "rfc4733"), ("uac_dtmf_info.xml", "sip_info")])
def test_sipp_walks_the_menu_with_g711_audio_and_digits(hotline, tmp_path, scenario, method):
    link_pcaps(tmp_path)
    before = {c["call_id"] for c in hotline.calls()}
    proc, statuses = sipp_call(("127.0.0.1", hotline.sip_port), tmp_path, scenario=scenario, timeout=60,
                               extra=["-set", "digits", "12", "-set", "gap_ms", "2500", "-set", "audio_ms", "1500"])
    assert proc.returncode == 0 and 200 in statuses, (proc.returncode, statuses, proc.stdout[-2000:])
    calls = hotline.wait_calls(lambda c: any(x["call_id"] not in before and x["status"] == "ended" for x in c))
    call = next(x for x in calls if x["call_id"] not in before)
    assert call["menu_path"][:3] == ["welcome", "main", "case_query"], call
    assert call["digits"] == "12"
    assert digit_methods(hotline, call["call_id"]) == [("1", method), ("2", method)]
    assert call["end_cause"] == "caller_hangup"
    assert call["media"]["rx_peak"] > 1000, "the caller's G.711 audio did not reach the call's task"


@requires_baresip
def test_baresip_phone_calls_and_walks_the_menu(hotline, tmp_path):
    before = {c["call_id"] for c in hotline.calls()}
    phone = Baresip(tmp_path / "baresip").start()
    try:
        phone.command("dial", hotline.uri)
        hotline.wait_calls(lambda c: any(x["call_id"] not in before and x["status"] == "answered" for x in c))
        time.sleep(2)
        phone.command("sndcode", "1")
        time.sleep(2)
        phone.command("sndcode", "1")
        time.sleep(3)
        phone.command("hangup")
        calls = hotline.wait_calls(lambda c: any(x["call_id"] not in before and x["status"] == "ended" for x in c))
    finally:
        phone.stop()
    call = next(x for x in calls if x["call_id"] not in before)
    assert call["menu_path"][:3] == ["welcome", "main", "case_query"], (call, phone.proc.log()[-1500:])
    assert call["digits"] == "11"
    assert call["end_side"] == "caller"
    assert call["media"]["rx_peak"] > 1000  # baresip's sine tone reached the call's task


def test_menu_hot_reload_keeps_calls_and_refuses_invalid_edits(tmp_path):
    import threading

    menu = write_menu(tmp_path / "menu.yaml", "start: a\nnodes:\n  a: [{play: beep}, {pause: 4}, {goto: a2}]\n"
                                              "  a2: [{play: beep}, hangup]\n")
    h = Hotline(tmp_path / "home", workers=1, menu=menu).start()
    try:
        running: dict = {}
        t = threading.Thread(target=lambda: running.update(h.dial("--duration", "15")))
        t.start()
        h.wait_calls(lambda c: c and c[0]["status"] == "answered")
        write_menu(menu, "start: b\nnodes:\n  b: [{play: beep}, {pause: 0.5}, hangup]\n")
        time.sleep(1.5)  # reload interval in tests: 0.5 s
        t.join(30)
        # the call that was running when the menu changed finished on the menu it started with
        assert running["hangup_side"] == "remote"
        first = h.wait_calls(lambda c: c and c[0]["status"] == "ended")[0]
        assert first["menu_path"] == ["a", "a2"]
        # new calls take the new menu
        h.dial("--duration", "10")
        assert h.wait_calls(lambda c: len(c) == 2 and c[0]["status"] == "ended")[0]["menu_path"] == ["b"]
        # an invalid edit is refused (logged with file:line) and the running menu stays
        write_menu(menu, "start: b\nnodes:\n  b: [{play: beep}, {gotoo: b}]\n")
        time.sleep(1.5)
        h.dial("--duration", "10")
        assert h.wait_calls(lambda c: len(c) == 3 and c[0]["status"] == "ended")[0]["menu_path"] == ["b"]
        log = h.proc.log()
        assert "menu_reload_rejected" in log and f"{menu}:3:" in log and "unknown verb 'gotoo'" in log
    finally:
        assert h.stop() == 0


def test_doctor_reports_all_green_for_the_running_hotline(hotline):
    import json

    r = hotline.cli("doctor", "--json")
    checks = [json.loads(line) for line in r.stdout.splitlines()]
    names = {c["name"] for c in checks}
    assert {"pjsua2", "menu", "prompts", "database", "kamailio", "hub", "front door (Kamailio)", "worker w0",
            "worker w1"} <= names
    assert r.returncode == 0 and all(c["status"] in ("ok", "info") for c in checks), checks
