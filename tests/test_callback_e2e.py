"""Issue 7, acceptance 1, the automatic callback (回访) with real SIP peers: the real `hotline serve` (Kamailio, one
IVR worker, the hub) whose callback target (``work_orders.auto_callback.target``) points at a pjsua2 citizen's phone
on loopback (tests/sip_answerer.py, a mode per called number). Three orders are driven through the API to
``answered`` (an operator files, a supervisor dispatches, the handler's team signs and answers); the hub's
dispatcher calls each citizen through the worker:

- 13800000002 answers, hears the greeting, the answer and the question, and presses 2: the order is reopened and the
  supervisors are alerted (a notice in the database and on the 督办 API);
- 13800000005 presses 5: the order is closed with rating 5;
- 13800000486 is busy (486): 回访未成功, due again after the first retry delay (30 minutes).

Each callback has its outbound call record (direction outbound, answered or not, its end, digits, outcome and the
hub's link to the order). The handler's answer is spoken in the speech service's voice when whisper-base and the
TTS venv are installed (the speech service also listens for a spoken rating; the keys come first here), else the
fixed sentence. The work-order clock is a file (Monday 10:00, office hours) and the dispatcher looks every 0.3 s.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from ivr.phrases import text_hash
from tests.callback_support import ROOT, CitizenPhone
from tests.hotline_proc import Hotline
from tests.sipsupport import requires_kamailio
from tests.test_case_calls import warm_voice
from tests.work_order_support import CN, staff

pytestmark = [pytest.mark.sip, requires_kamailio, pytest.mark.timeout(150)]

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=CN)  # a Monday, in office hours
POOR, GOOD, BUSY = "13800000002", "13800000005", "13800000486"
FEEDBACK = "已转告王明法官，法官助理将于明日上午回电。"
MODEL = ROOT / "var" / "models" / "whisper-base"
TTS_VENV = ROOT / "var" / "tts-venv"
VOICE = (MODEL / "model.bin").exists() and (TTS_VENV / "bin" / "python").exists()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    home = tmp_path_factory.mktemp("callback-e2e")
    (home / "clock").write_text(NOW.isoformat())
    rtp = 24000 + (time.time_ns() // 1000 % 50) * 40
    citizen = CitizenPhone(home, {POOR: "dtmf:2", GOOD: "dtmf:5", BUSY: "busy"}, rtp=rtp + 200, dtmf_after=1.0,
                           dtmf_every=1.0)
    h = Hotline(home, workers=1, rtp_base=rtp, extra_env={
        "HOTLINE_WORK_ORDERS__CLOCK_FILE": str(home / "clock"),
        "HOTLINE_WORK_ORDERS__AUTO_CALLBACK__ENABLED": "true",
        "HOTLINE_WORK_ORDERS__AUTO_CALLBACK__TARGET": citizen.template,
        "HOTLINE_WORK_ORDERS__AUTO_CALLBACK__INTERVAL_S": "0.3",
        "HOTLINE_WORK_ORDERS__AUTO_CALLBACK__MAX_CONCURRENT": "3",
        "HOTLINE_WORK_ORDERS__AUTO_CALLBACK__RESERVE_SLOTS": "0",
        "HOTLINE_WORK_ORDERS__AUTO_CALLBACK__RING_TIMEOUT_S": "10"})
    if VOICE:  # the summary in the speech service's voice (a cold cache: rendered during the call)
        h.extra_env.update({"HOTLINE_SPEECH__ENABLED": "true", "HOTLINE_ASR__MODEL_DIR": str(MODEL),
                            "HOTLINE_TTS__VENV": str(TTS_VENV), "HOTLINE_TTS__CACHE_DIR": str(home / "tts-cache"),
                            "HOTLINE_SPEECH__PRERENDER_ANSWERS": "false"})
    try:
        h.start()
        if VOICE:
            print(f"\nvoice ready after {warm_voice(h):.1f} s")
        yield h, citizen
    finally:
        code = h.stop()
        citizen.stop()
        assert code == 0, h.proc.log()[-3000:]


def ok(r, code: int = 200) -> dict:
    assert r.status_code == code, r.text
    return r.json()


def db_rows(h: Hotline, sql: str, *args) -> list[sqlite3.Row]:
    con = sqlite3.connect(h.home / "hotline.db")
    con.row_factory = sqlite3.Row
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def wait_order(op, oid: int, pred, timeout: float = 45.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        o = ok(op.get(f"/api/work_orders/{oid}"))
        if pred(o):
            return o
        if time.monotonic() > deadline:
            raise AssertionError(f"order {oid} never got there: {o['status']} {[x['action'] for x in o['history']]}")
        time.sleep(0.2)


def test_callbacks_by_outbound_calls_rate_reopen_close_and_retry(setup):
    t_test = time.monotonic()
    h, citizen = setup
    hub = SimpleNamespace(home=h.home, url=f"http://127.0.0.1:{h.hub_port}")
    users = staff(hub, {"民一庭": ["hd1"]})
    op, sup, hd1 = users["op"], users["sup"], users["hd1"]

    answered_at: dict[str, float] = {}
    ids: dict[str, int] = {}
    for phone in (POOR, GOOD, BUSY):
        o = ok(op.post("/api/work_orders", json={"category": "contact_judge", "channel": "hotline",
                                                 "content": "想联系承办法官，询问案件进度", "citizen_phone": phone,
                                                 "citizen_name": "张伟"}), 201)
        ids[phone] = o["id"]
        ok(sup.post(f"/api/work_orders/{o['id']}/dispatch", json={"assignee": "民一庭"}))
        ok(hd1.post(f"/api/work_orders/{o['id']}/accept", json={}))
        a = ok(hd1.post(f"/api/work_orders/{o['id']}/answer", json={"feedback": FEEDBACK}))
        answered_at[phone] = time.time()
        assert a["status"] == "answered" and a["next_callback_at"] == NOW.astimezone(UTC).isoformat()

    # 13800000486 is busy: not reached, due again in 30 minutes (the work-order clock stands still)
    busy = wait_order(op, ids[BUSY], lambda o: any(x["action"] == "callback_failed" for x in o["history"]))
    assert busy["status"] == "callback" and busy["callback_attempts"] == 1
    assert busy["next_callback_at"] == (NOW + timedelta(minutes=30)).astimezone(UTC).isoformat()
    failed = [x for x in busy["history"] if x["action"] == "callback_failed"]
    assert failed[0]["actor"] == "自动回访" and failed[0]["note"].startswith("第1次回访未成功（占线（486）")

    # 13800000002 presses 2: reopened, the supervisors alerted
    poor = wait_order(op, ids[POOR], lambda o: o["status"] != "callback" and o["status"] != "answered")
    assert (poor["status"], poor["rating"], poor["reopen_count"]) == ("reopened", 2, 1)
    assert [x["action"] for x in poor["history"] if x["actor"] == "自动回访"] == ["start_callback", "rate"]
    notices = db_rows(h, "SELECT kind, audience, message FROM work_order_notices WHERE order_id = ? "
                         "AND audience = 'supervisor'", ids[POOR])
    assert [(n["kind"], n["audience"]) for n in notices] == [("rate", "supervisor")]
    assert "不满意" in notices[0]["message"]
    alerts = ok(sup.get("/api/work_orders/supervision"))
    assert any(n["order_id"] == ids[POOR] and n["kind"] == "rate" for n in alerts["alerts"])
    assert ids[POOR] in [o["id"] for o in alerts["reopened"]]

    # 13800000005 presses 5: closed with rating 5
    good = wait_order(op, ids[GOOD], lambda o: o["status"] == "closed")
    assert good["rating"] == 5 and good["callback_attempts"] == 1 and good["closed_at"]

    # the outbound call records
    for phone, cause, answered, status in ((POOR, "callback_rated", True, 200), (GOOD, "callback_rated", True, 200),
                                           (BUSY, "busy", False, 486)):
        rows = db_rows(h, "SELECT c.* FROM calls c JOIN call_events e ON e.call_id = c.call_id "
                          "WHERE e.type = 'callback_dispatched' AND json_extract(e.payload, '$.order_id') = ?",
                       ids[phone])
        deadline = time.monotonic() + 10
        while (not rows or rows[0]["status"] != "ended") and time.monotonic() < deadline:
            time.sleep(0.2)
            rows = db_rows(h, "SELECT * FROM calls WHERE call_id = ?", rows[0]["call_id"]) if rows else rows
        assert len(rows) == 1, phone
        call = rows[0]
        assert call["direction"] == "outbound" and call["callee"] == citizen.uri(phone)
        assert (call["status"], call["end_cause"], call["status_code"]) == ("ended", cause, status)
        assert (call["answered_at"] is not None) == answered
        events = [r["type"] for r in db_rows(h, "SELECT type FROM call_events WHERE call_id = ? ORDER BY ts",
                                             call["call_id"])]
        assert events.count("callback_outcome") == 1 and "call_offered" in events and "call_ended" in events
        if answered:
            assert call["digits"].startswith({POOR: "2", GOOD: "5"}[phone])
            assert '"callback_greeting"' in call["prompts"] and '"callback_rating"' in call["prompts"]
            assert '"callback_thanks"' in call["prompts"]
            if VOICE:  # the handler's answer in the voice, named by a hash of its words
                assert f'"callback_summary:1:{text_hash(FEEDBACK)}"' in call["prompts"]
                assert '"callback_summary_lead"' in call["prompts"] and "王明" not in call["prompts"]
            else:
                assert '"callback_no_summary"' in call["prompts"]
    listed = [c for c in h.calls() if c.get("direction") == "outbound"]
    assert len(listed) == 3

    # what the citizens heard and when their phones rang
    rang = {phone: citizen.incoming(phone)[0]["at"] - answered_at[phone] for phone in (POOR, GOOD, BUSY)}
    heard = {r["mode"]: r for r in citizen.results()}
    assert heard["dtmf:2"]["connected"] and heard["dtmf:2"]["record_peak"] > 1000
    assert heard["dtmf:5"]["connected"] and heard["busy"]["status"] == 486
    assert all(0 < s < 5 for s in rang.values()), rang
    print(f"\ndue -> citizen's phone rings: {', '.join(f'{p} {s:.2f} s' for p, s in rang.items())}; "
          f"answered calls {heard['dtmf:2']['duration_s']} s / {heard['dtmf:5']['duration_s']} s; "
          f"test {time.monotonic() - t_test:.1f} s")
