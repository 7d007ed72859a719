"""Case self-service (issue 8) on real calls: `hotline dial` callers with DTMF (and a spoken message) through the
real `hotline serve` (Kamailio, a worker, the hub with its demo cases, the speech service for the voice).

- a correct case number and 查询密码 hear the status: the recording is loud after the last key, and the call
  record names every sentence with its words (``case_status:<i>:<text>``), the secret's keys only as ``•``;
- a message to the judge is recorded, transcribed and reported as MessageRecorded contact_judge with the case,
  and the hub files it as a work order for the judge's team, due in 2 working days;
- the judge's team line answers: the caller is bridged to it (the worker's operator-leg bridge);
- three wrong secrets lock the case and the caller is offered an operator;
- a case system that refuses connections: the hub's apology and the operator offer.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.hotline_proc import Hotline
from tests.sipsupport import Proc, free_udp_port, requires_kamailio
from work_orders.calendar import WorkCalendar

pytestmark = [pytest.mark.sip, requires_kamailio]

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "tests" / "data" / "speech"
MODEL = ROOT / "var" / "models" / "whisper-base"
LOUD = 1000  # a received 20 ms frame with a peak above this is speech, not line noise
SAY_LOCKED = "验证未通过的次数过多，今天已不能再通过电话查询这个案件，请明天再试，或转人工服务。"
SAY_UNAVAILABLE = "抱歉，案件查询系统暂时无法使用，请稍后再拨，或转人工服务。"


def warm_voice(h: Hotline, timeout: float = 90.0) -> float:
    """Wait for the speech service and start its synthesizer (the first miss loads tensorflow)."""
    from ivr.speech_client import SpeechUnavailable, synthesize

    url = f"ws://127.0.0.1:{h.speech_port}"
    t0 = time.monotonic()
    while True:
        try:
            asyncio.run(synthesize(url, "您好，这里是一二三六八。", 8000, timeout=60))
            return time.monotonic() - t0
        except SpeechUnavailable:
            if time.monotonic() - t0 > timeout:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="module")
def line(tmp_path_factory):
    home = tmp_path_factory.mktemp("cases")
    h = Hotline(home, workers=2,  # 4 calls at once + a judge leg: over one worker's 4 slots
                extra_env={"HOTLINE_SPEECH__ENABLED": "true", "HOTLINE_ASR__MODEL_DIR": str(MODEL),
                           "HOTLINE_TTS__VENV": str(ROOT / "var" / "tts-venv"),
                           "HOTLINE_TTS__CACHE_DIR": str(home / "tts-cache"),  # cold: every sentence is new
                           "HOTLINE_SPEECH__PRERENDER_ANSWERS": "false",
                           "HOTLINE_IVR__WORKING_HOURS__MODE": "open"}).start()
    print(f"\nvoice ready after {warm_voice(h):.1f} s")
    yield h
    assert h.stop() == 0, h.proc.log()[-3000:]


JUDGE_CASE = {"case_number": "（2026）粤0305民初8888号", "lookup_number": "26018888", "cause": "买卖合同纠纷",
              "parties": ["原告:赵磊:31002X"], "stage": "in_trial", "judge": "王明", "clerk": "陈静",
              "department": "民一庭", "updated_at": "2027-02-20 16:00", "query_password": "888888"}


@pytest.fixture(scope="module")
def placed(line, tmp_path_factory):
    """The module's four calls, placed at once (5 s apart) on the one hotline: each test checks its own. The
    wrong passwords go last: they lock the dialer's number, after the others have verified."""
    h = line
    tmp = tmp_path_factory.mktemp("case-calls")
    phone = JudgePhone(tmp, talk=4.0)
    try:
        case = [dict(JUDGE_CASE, judge_team_line=f"sip:team@127.0.0.1:{phone.port}")]
        (tmp / "case.json").write_text(json.dumps(case, ensure_ascii=False), encoding="utf-8")
        r = h.cli("cases", "import", str(tmp / "case.json"))
        assert r.returncode == 0, r.stdout + r.stderr
        outs = h.dial_many({
            # 1 stops the welcome; the keypad case number barges into its prompt; 1 confirms during the
            # read-back; the 查询密码 barges into its prompt; then the status, sentence by sentence
            "status": ("--dtmf", "wait:1.5,1,wait:2,2026*440305*1*1234#,wait:4,1,wait:1.5,123456#",
                       "--record", str(tmp / "status.wav"), "--duration", "37"),
            # case 2468 has no team line: after the check straight to the message (prompt ~8 s, beep), spoken
            # at ~25 s; 3 s of silence end it, 1 keeps it ("确认请按1，重新录制请按2"), goodbye
            "judge_message": ("--dtmf", "wait:1.5,3,wait:2.5,26012468#,wait:4,1,wait:1.5,246810#,wait:16,1",
                              "--play", str(SPEECH / "q04.wav"), "--play-at", "25", "--duration", "50"),
            "judge_team": ("--dtmf", "wait:1.5,3,wait:2.5,26018888#,wait:4,1,wait:1.5,888888#",
                           "--play", str(SPEECH / "q13.wav"), "--play-at", "19", "--duration", "40"),
            "wrong_passwords": ("--dtmf", "wait:1.5,1,wait:2,26013579#,wait:2.5,1,wait:1.5,111111#,wait:4.5,"
                                "222222#,wait:4.5,33333*#,wait:9,0", "--duration", "36"),
        }, stagger_s=5.0)
    finally:
        phone.stop()
    return {"outs": outs, "phone": phone}


def events(h: Hotline, call_id: str, type_: str) -> list[dict]:
    with sqlite3.connect(h.home / "hotline.db") as db:
        rows = db.execute("SELECT payload FROM call_events WHERE call_id = ? AND type = ? ORDER BY ts",
                          (call_id, type_)).fetchall()
    return [json.loads(r[0]) for r in rows]


def wait_order(h: Hotline, call_id: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(h.home / "hotline.db") as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM work_orders WHERE call_id = ?", (call_id,)).fetchone()
        if row is not None:
            return dict(row)
        if time.monotonic() > deadline:
            raise AssertionError(f"no work order for call {call_id}")
        time.sleep(0.3)


def status_sentence(h: Hotline, number: str) -> str:
    r = h.cli("cases", "show", number, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["status_sentence"]


def first_audio_after(out: dict, t: float) -> float:
    """Seconds from ``t`` to the first loud frame the caller received after it."""
    return next(ft for ft, peak in out["frames"] if ft > t and peak > LOUD) - t


def test_case_number_and_password_hear_the_status(line, placed):
    h, out = line, placed["outs"]["status"]
    assert out["connected"], out
    call = h.ended_call(out)
    t_hash = out["digits"][-1]["t"]
    latency = first_audio_after(out, t_hash)
    loud_s = sum(0.02 for t, p in out["frames"] if t > t_hash and p > LOUD)
    print(f"\nlast key of the secret -> first audio of the status at the caller: {latency * 1000:.0f} ms; "
          f"{loud_s:.1f} s of loud audio after it")
    assert latency < 3.0 and loud_s > 8.0  # cold voice; bench/case_status.py measures the latency properly

    assert call["menu_path"] == ["welcome", "main", "case_query"], call
    spoken = [p for p in call["prompts"] if p.startswith("case_status:")]
    assert [p.split(":")[1] for p in spoken] == [str(i) for i in range(1, len(spoken) + 1)] and len(spoken) >= 3
    assert "".join(p.split(":", 2)[2] for p in spoken) == status_sentence(h, "26011234")
    assert any(p.startswith("case_readback:") for p in call["prompts"]), call["prompts"]
    assert call["prompts"].index("case_secret_enter") < call["prompts"].index(spoken[0])
    # the secret is on the call record only as masked keys
    assert call["digits"] == "12026*440305*1*1234#1••••••#", call["digits"]
    with sqlite3.connect(h.home / "hotline.db") as db:
        stored = " ".join(r[0] for r in db.execute("SELECT payload FROM call_events WHERE call_id = ?",
                                                   (call["call_id"],)))
    assert "123456" not in stored
    assert "123456" not in h.proc.log()


def test_a_message_to_the_judge_is_recorded_with_the_case(line, placed):
    h, out = line, placed["outs"]["judge_message"]
    assert out["connected"] and out["hangup_side"] == "remote", out
    call = h.ended_call(out, timeout=60)
    assert call["menu_path"] == ["welcome", "main", "contact_judge"], call
    assert call["end_cause"] == "message_recorded" and call["prompts"][-1] == "judge_message_goodbye", call
    deadline = time.monotonic() + 30
    while not (texts := events(h, call["call_id"], "message_transcribed")) and time.monotonic() < deadline:
        time.sleep(0.5)  # the message is reported at once, its transcript follows
    msgs = events(h, call["call_id"], "message_recorded")
    assert len(msgs) == 1 and len(texts) == 1, (msgs, texts)
    m = dict(msgs[0], text=texts[0]["text"])
    assert msgs[0]["transcript_pending"] and texts[0]["message_event_id"] == m["event_id"], (msgs, texts)
    assert m["purpose"] == "contact_judge" and m["case_number"] == "（2026）粤0305民初2468号", m
    assert m["recording"] == f"{call['call_id']}-contact_judge.wav" and m["duration_s"] > 3, m
    assert (h.home / "recordings" / m["recording"]).exists()
    assert m["text"], m  # the speech service transcribed it
    print(f"\nmessage to the judge: {m['duration_s']} s, heard {m['text']!r}")
    # the hub files it as a work order for the case's judge's team, due in 2 working days
    order = wait_order(h, call["call_id"])
    deadline = time.monotonic() + 10
    while m["text"] not in order["content"] and time.monotonic() < deadline:
        time.sleep(0.3)  # the transcript replaces "（转写中）" on the hub's writer
        order = wait_order(h, call["call_id"])
    assert order["category"] == "contact_judge" and order["case_number"] == m["case_number"], order
    assert order["assignee"] == "民二庭许文法官团队" and order["status"] == "dispatched", order
    assert json.loads(order["recordings"]) == [m["recording"]] and m["text"] in order["content"], order
    dispatched, due = (datetime.fromisoformat(order[k]).replace(tzinfo=UTC) for k in ("dispatched_at", "feedback_due"))
    assert due == WorkCalendar().due_after(dispatched, 2), (dispatched, due)


class JudgePhone(Proc):
    """The judge team's phone (tests/sip_answerer.py): answers, talks, hangs up."""

    def __init__(self, home: Path, talk: float):
        self.port = free_udp_port()
        argv = [sys.executable, str(ROOT / "tests" / "sip_answerer.py"), "--port", str(self.port), "--modes",
                "answer", "--rtp-port", str(47600 + self.port % 200), "--record-prefix", str(home / "judge"),
                "--talk", str(talk), "--play", str(SPEECH / "q02.wav")]
        super().__init__("judge", argv, home / "judge.log", ROOT)
        self.start()
        deadline = time.monotonic() + 10
        while '"ready"' not in self.log():
            if not self.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"judge phone not up:\n{self.log()[-2000:]}")
            time.sleep(0.1)

    def results(self) -> list[dict]:
        return [json.loads(x) for x in self.log().splitlines() if x.startswith("{") and '"mode"' in x]


def test_the_judges_team_line_answers_and_is_bridged(line, placed):
    h, out, phone = line, placed["outs"]["judge_team"], placed["phone"]
    assert out["connected"] and out["hangup_side"] == "remote", out
    call = h.ended_call(out)
    bridge = events(h, call["call_id"], "bridge_update")
    assert [b["state"] for b in bridge] == ["dialing", "connected", "ended"], bridge
    assert bridge[0]["target"] == f"sip:team@127.0.0.1:{phone.port}" and bridge[0]["offer_id"].startswith("judge-")
    assert call["end_cause"] == "judge_team_hangup" and "judge_transfer_connecting" in call["prompts"], call
    assert not events(h, call["call_id"], "message_recorded")
    answered = phone.results()
    assert answered and answered[0]["connected"] and answered[0]["record_peak"] > LOUD, answered  # heard the caller


def test_three_wrong_passwords_lock_and_offer_an_operator(line, placed):
    h, out = line, placed["outs"]["wrong_passwords"]
    assert out["connected"], out
    call = h.ended_call(out)
    said = [p for p in call["prompts"] if p.startswith("case_say:")]
    assert said == ["case_say:验证未通过，您还可以再试两次。", "case_say:验证未通过，您还可以再试一次。",
                    f"case_say:{SAY_LOCKED}"], call["prompts"]
    assert "case_operator_offer" in call["prompts"]
    assert call["menu_path"] == ["welcome", "main", "case_query", "case_locked", "case_staff"], call
    assert events(h, call["call_id"], "handoff_requested")[0]["category"] == "query"
    assert call["digits"].count("•") == 18 and "111111" not in call["digits"]
    # the hub refuses further tries today, whatever the secret
    with sqlite3.connect(h.home / "hotline.db") as db:
        results = [r[0] for r in db.execute("SELECT result FROM case_verify_attempts WHERE call_id = ? ORDER BY id",
                                            (call["call_id"],))]
    assert results == ["wrong", "wrong", "wrong"], results


def test_case_system_down_apologises_and_offers_an_operator(tmp_path):
    refused = free_udp_port()  # nothing listens there
    h = Hotline(tmp_path / "down", workers=1,
                extra_env={"HOTLINE_CASES__BACKEND": "http", "HOTLINE_CASES__URL": f"http://127.0.0.1:{refused}",
                           "HOTLINE_CASES__TOKEN": "t", "HOTLINE_IVR__WORKING_HOURS__MODE": "open"}).start()
    try:
        out = h.dial("--dtmf", "wait:1.5,1,wait:2,2026*440305*1*1234#,wait:9,0", "--duration", "22")
        assert out["connected"], out
        call = h.ended_call(out)
    finally:
        assert h.stop() == 0
    apology = first_audio_after(out, out["digits"][-2]["t"])
    print(f"\ncase number keyed -> the apology at the caller: {apology * 1000:.0f} ms")
    assert apology < 2.5  # the hub's retries, then the apology (a rendered prompt: no voice needed)
    assert f"case_say:{SAY_UNAVAILABLE}" in call["prompts"] and "case_operator_offer" in call["prompts"], call
    assert call["menu_path"] == ["welcome", "main", "case_query", "case_unavailable", "case_staff"], call
    assert events(h, call["call_id"], "handoff_requested")[0]["reason"] == "case_query"
