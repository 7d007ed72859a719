"""Issue 15, item 1: a recorded message is reported the moment the caller finishes, so a worker killed while
the speech service transcribes it loses nothing.

`hotline serve` (Kamailio, one worker, the hub) after hours (the holiday file closes today), with a stand-in
speech service that holds the message's transcription open. A caller presses 0 and leaves a message; while the
transcription waits, the worker is killed with SIGKILL. Then:

- the hub has the ``message_recorded`` event and the work order naming the recording (filed from the spool the
  dead worker left), the recording on disk;
- the restarted worker resumes the transcription (the speech service answers now): one ``message_transcribed``
  with that message's event id, and the order's content carries the text in place of "（转写中）".
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.fake_speech import FakeSpeech
from tests.hotline_proc import Hotline
from tests.sipsupport import requires_kamailio
from tests.test_faults import worker_pid

pytestmark = [pytest.mark.sip, requires_kamailio, pytest.mark.timeout(150)]

SPEECH = os.path.join(os.path.dirname(__file__), "data", "speech")


def _events(db_path, call_id: str) -> list[dict]:
    with sqlite3.connect(db_path) as db:
        return [dict(json.loads(p), type=t) for t, p in db.execute(
            "SELECT type, payload FROM call_events WHERE call_id = ? ORDER BY ts, received_at", (call_id,))]


def _orders(db_path, call_id: str) -> list[dict]:
    with sqlite3.connect(db_path) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM work_orders WHERE call_id = ?", (call_id,))]


def _wait(what, predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if predicate(got):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last: {str(got)[:2000]}")
        time.sleep(0.2)


def test_sigkill_during_transcription_loses_neither_the_message_nor_its_order(tmp_path):
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    (tmp_path / "holidays.yaml").write_text(
        f"holidays: [{today.isoformat()}, {(today + timedelta(days=1)).isoformat()}]\n", encoding="utf-8")
    speech = FakeSpeech().start()
    h = Hotline(tmp_path / "home", workers=1,
                extra_env={"HOTLINE_IVR__WORKING_HOURS__MODE": "schedule",
                           "HOTLINE_WORK_ORDERS__HOLIDAY_FILE": str(tmp_path / "holidays.yaml"),
                           "HOTLINE_SPEECH__ENABLED": "true", "HOTLINE_SPEECH__URL": speech.url})
    db_path = h.home / "hotline.db"
    try:
        h.start()
        caller = h.dial("--dtmf", "wait:1,0", "--play", os.path.join(SPEECH, "q29.wav"), "--play-at", "8",
                        "--duration", "40", timeout=60)
        assert caller["connected"], caller
        (call,) = h.wait_calls(lambda c: len(c) == 1 and c[0]["status"] == "ended", timeout=15)
        call_id = call["call_id"]
        # the transcription is under way (its audio sent) and held open: kill the worker now
        _wait(lambda: speech.streams_ended, lambda n: n >= 1, 20)
        victim = worker_pid(h, 0)
        speech.answer = True  # the restarted worker's speech service answers
        os.kill(victim, signal.SIGKILL)
        order = _wait(lambda: _orders(db_path, call_id), lambda o: len(o) == 1, 20)[0]
        recorded = [e for e in _events(db_path, call_id) if e["type"] == "message_recorded"]
        order = _wait(lambda: _orders(db_path, call_id),
                      lambda o: len(o) == 1 and speech.text in o[0]["content"], 30)[0]
        events = _wait(lambda: _events(db_path, call_id),
                       lambda ev: any(e["type"] == "message_transcribed" for e in ev), 10)
        pending = list((h.home / "recordings" / ".transcribe" / "w0").glob("*.json"))
    finally:
        code = h.stop()
        speech.stop()
    assert code == 0, h.proc.log()[-3000:]
    (msg,) = recorded
    assert msg["purpose"] == "after_hours" and msg["transcript_pending"] is True, msg
    assert (h.home / "recordings" / msg["recording"]).stat().st_size > 10_000
    assert json.loads(order["recordings"]) == [msg["recording"]], order
    (transcribed,) = [e for e in events if e["type"] == "message_transcribed"]
    assert transcribed["message_event_id"] == msg["event_id"] and transcribed["text"] == speech.text
    assert f"（录音 {msg['recording']}）：{speech.text}" in order["content"], order["content"]
    assert "转写中" not in order["content"], order["content"]
    assert pending == [], pending
    print(f"\norder {order['number']}: {order['content']!r}")
