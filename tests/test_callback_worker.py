"""回访 on real calls, the worker's side: a real IVR worker gets ``CallbackCommand``s from a stand-in hub and calls a
pjsua2 citizen's phone on loopback. The citizen answers and presses 4 (rated, keypad; the greeting, the fixed
summary sentence — the voice is off — and the question were heard); is busy (486); lets it ring past the ring
timeout (no answer, 408); a target pjsua cannot dial; an after-hours callback (no rating, reached). Each call has
its outbound call record and exactly one ``CallbackOutcome``."""

from __future__ import annotations

import uuid

import pytest

from ivr.contract import CallbackCommand
from tests.callback_support import CitizenPhone
from tests.test_queue_calls import Line

pytestmark = [pytest.mark.sip, pytest.mark.timeout(120)]

RATES, BUSY, RINGS, LATE = "13800000004", "13800000486", "13800000408", "13800000031"


@pytest.fixture(scope="module")
def line(tmp_path_factory):
    ln = Line(tmp_path_factory.mktemp("callback-worker"))
    yield ln
    assert ln.stop() == 0, ln.proc.log()[-3000:]


@pytest.fixture(scope="module")
def citizen(line, tmp_path_factory):
    modes = {RATES: "dtmf:4", BUSY: "busy", RINGS: "ring", LATE: "dtmf:4"}
    phone = CitizenPhone(tmp_path_factory.mktemp("citizen"), modes,
                         rtp=line.rtp + 60, dtmf_after=0.5, dtmf_every=1.0)
    yield phone
    phone.stop()


def command(target: str, order_id: int, ring_timeout_s: float = 20.0) -> CallbackCommand:
    return CallbackCommand(call_id=uuid.uuid4().hex, order_id=order_id, order_number=f"12368-20261130-{order_id:04d}",
                           attempt=1, target=target, summary="已转告王明法官，法官助理将于明日回电。",
                           ring_timeout_s=ring_timeout_s)


def outcome_of(line: Line, call_id: str, timeout: float = 40.0) -> dict:
    e = line.hub.wait(lambda e: e["type"] == "callback_outcome" and e["call_id"] == call_id, timeout,
                      "callback_outcome")
    line.hub.wait(lambda e: e["type"] == "call_ended" and e["call_id"] == call_id, 10, "call_ended")
    assert len(line.hub.of_call(call_id, "callback_outcome")) == 1
    return e


def test_the_citizen_answers_hears_the_questions_and_presses_4(line, citizen):
    cmd = command(citizen.uri(RATES), 11)
    line.hub.send("w0", cmd)
    out = outcome_of(line, cmd.call_id)
    assert (out["outcome"], out["rating"], out["method"], out["order_id"], out["attempt"]) == ("rated", 4, "keypad",
                                                                                               11, 1)
    events = line.hub.of_call(cmd.call_id)
    offered = next(e for e in events if e["type"] == "call_offered")
    assert offered["direction"] == "outbound" and offered["callee"] == citizen.uri(RATES) and offered["sip_call_id"]
    types = [e["type"] for e in events]
    assert types.index("call_offered") < types.index("call_answered") < types.index("callback_outcome")
    prompts = [(e["prompt"], e["interrupted"]) for e in events if e["type"] == "prompt_played"]
    assert prompts[:2] == [("callback_greeting", False), ("callback_no_summary", False)]  # no voice: fixed sentence
    assert prompts[2][0] == "callback_rating" and prompts[-1] == ("callback_thanks", False)
    assert [e["node"] for e in events if e["type"] == "menu_entered"] == ["callback", "callback_rating"]
    digits = [e for e in events if e["type"] == "digits_received"]
    assert digits and digits[0]["digits"] == "4" and digits[0]["method"] == "rfc4733"
    ended = next(e for e in events if e["type"] == "call_ended")
    assert (ended["cause"], ended["side"]) == ("callback_rated", "ivr")
    result = citizen.wait_result(citizen.incoming(RATES)[0]["incoming"])
    assert result["connected"] and result["record_peak"] > 1000  # the citizen heard the prompts
    assert result["duration_s"] > 9  # greeting and summary sentence first: keys before the question do not count


def test_an_after_hours_callback_tells_the_message_was_received_and_asks_no_rating(line, citizen):
    """Issue 16 part 7: the callback promised after hours, with no answer yet: received, being handled, goodbye;
    the key the citizen presses is no rating; the outcome is reached."""
    cmd = command(citizen.uri(LATE), 14).model_copy(update={"purpose": "after_hours", "summary": ""})
    line.hub.send("w0", cmd)
    out = outcome_of(line, cmd.call_id)
    assert (out["outcome"], out["rating"], out["order_id"]) == ("reached", None, 14), out
    events = line.hub.of_call(cmd.call_id)
    prompts = [e["prompt"] for e in events if e["type"] == "prompt_played"]
    assert prompts == ["callback_after_hours", "callback_after_hours_pending", "callback_after_hours_bye"], prompts
    ended = next(e for e in events if e["type"] == "call_ended")
    assert (ended["cause"], ended["side"]) == ("callback_reached", "ivr")
    result = citizen.wait_result(citizen.incoming(LATE)[0]["incoming"])
    assert result["connected"] and result["record_peak"] > 1000 and result["duration_s"] > 18, result


def test_a_busy_citizen_and_one_who_does_not_answer(line, citizen):
    busy, rings = command(citizen.uri(BUSY), 12), command(citizen.uri(RINGS), 13, ring_timeout_s=2.0)
    line.hub.send("w0", busy)
    line.hub.send("w0", rings)
    b = outcome_of(line, busy.call_id)
    assert (b["outcome"], b["status_code"], b["rating"]) == ("busy", 486, None)
    ended = line.hub.of_call(busy.call_id, "call_ended")[0]
    assert (ended["cause"], ended["side"], ended["status_code"]) == ("busy", "system", 486)
    assert not line.hub.of_call(busy.call_id, "call_answered")
    r = outcome_of(line, rings.call_id, 15)
    assert (r["outcome"], r["status_code"]) == ("no_answer", 408)
    assert line.hub.of_call(rings.call_id, "call_ended")[0]["cause"] == "no_answer"


def test_a_target_pjsua_cannot_dial_is_a_failed_callback(line):
    cmd = command("sip:bad uri@", 14)
    line.hub.send("w0", cmd)
    out = outcome_of(line, cmd.call_id, 10)
    assert out["outcome"] == "failed" and out["reason"].startswith("dial_error")
    assert line.hub.of_call(cmd.call_id, "call_ended")[0]["cause"] == "dial_error"
