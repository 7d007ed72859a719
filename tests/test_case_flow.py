"""Menus 1, 3, 4, 5 and 6 on the bundled menu, driven through a scripted caller with a stand-in case desk
(the hub's JSON replies) and a stand-in voice: the dialogue, what lands on the call record, no secret in it."""

from __future__ import annotations

import asyncio
from collections import deque

import numpy as np
import pytest
import yaml

from court_cases.spoken import (
    SAY_INVALID,
    SAY_LOCKED,
    SAY_NOT_FOUND,
    SAY_UNAVAILABLE,
    readback,
    tries_left_sentence,
)
from ivr import phrases
from ivr.audio import Clip, PromptLibrary
from ivr.case_dialog import VerifiedCase, mask_case
from ivr.cases_client import caller_number
from ivr.contract import DigitsReceived, HandoffRequested, MenuEntered, MessageRecorded, PromptPlayed
from ivr.flow.channel import PlayResult
from ivr.flow.context import FlowContext
from ivr.flow.engine import run_flow
from ivr.flow.menu import load_menu
from ivr.flow.services import CallServices
from ivr.judge_call import judge_target
from ivr.settings import BUNDLED_MENU, BUNDLED_PROMPTS
from tests.fakes import FakeChannel, FakeHubApi

CASE = "（2026）粤0305民初1234号"
KEYPAD = "2026*440305*1*1234"
SECRET = "123456"
PARTS = ["您查询的案件，案由是民间借贷纠纷，目前正在审理中。",
         "下次开庭时间是二零二七年三月五日，星期五，上午九点三十分，地点在第三法庭。",
         "承办法官是王明，书记员是陈静，承办部门是民一庭。"]
BRIEF = {"case_number": CASE, "stage": "in_trial", "stage_name": "审理中", "judge": "王明", "clerk": "陈静",
         "department": "民一庭", "judge_team_line": "sip:8101@pbx.court.example"}


class Caller(FakeChannel):
    """Presses keys when a prompt whose name starts with the script's next entry begins; prompts end at once
    unless a key interrupts them. With ``voice_s`` it speaks that long after each beep (for messages)."""

    call_id = "case-test"

    def __init__(self, script: list[tuple[str, str]], voice_s: float = 0.0, rate: int = 8000):
        super().__init__(rate)
        self.script = deque(script)
        self.voice_s = voice_s

    async def play(self, clip: Clip, barge_in: bool) -> PlayResult:
        self.played.append(clip.name)
        if self.script and clip.name.startswith(self.script[0][0]):
            self.pending.extend(self.script.popleft()[1])
        if barge_in and self.pending:
            return PlayResult(0, True)
        await asyncio.sleep(0)
        return PlayResult(clip.duration_ms, False)

    async def next_digit(self, timeout: float):
        await asyncio.sleep(0)
        return await super().next_digit(timeout)


class TalkingCaller(Caller):
    hears = True

    async def audio_chunks(self):
        t, rng = 0.0, np.random.default_rng(2)
        while True:
            loud = t < self.voice_s
            t += 0.1
            await asyncio.sleep(0)
            yield rng.normal(0, 3000 if loud else 20, self.rate // 10).astype("<i2").tobytes()


class Desk(FakeHubApi):
    """The hub's /internal/cases replies (agent_console/cases/desk.py) for one demo case."""

    def __init__(self, result: str = "ok", max_failures: int = 3):
        super().__init__()
        self.result, self.failures, self.max = result, 0, max_failures

    def lookup_reply(self, number, ticket) -> dict:
        if self.result == "unavailable":
            return {"result": "unavailable", "say": SAY_UNAVAILABLE}
        if number.rstrip("#") not in (KEYPAD, "26011234", CASE):
            return {"result": "not_found" if "*" in number else "invalid",
                    "say": SAY_NOT_FOUND if "*" in number else SAY_INVALID}
        said = readback(CASE)
        if ticket == "T1":
            return {"result": "found", "case_number": CASE, "readback": said, "verified": True,
                    "status_parts": PARTS, "say": "".join(PARTS), "case": BRIEF}
        return {"result": "found", "case_number": CASE, "readback": said, "say": said}

    def verify_reply(self, secret) -> dict:
        if self.result == "down":
            return {"result": "unavailable", "say": SAY_UNAVAILABLE}
        if self.failures >= self.max:
            return {"result": "locked", "case_number": CASE, "say": SAY_LOCKED}
        if secret != SECRET:
            self.failures += 1
            left = self.max - self.failures
            if left == 0:
                return {"result": "locked", "case_number": CASE, "say": SAY_LOCKED}
            return {"result": "wrong", "case_number": CASE, "tries_left": left, "say": tries_left_sentence(left)}
        return {"result": "ok", "case_number": CASE, "tries_left": 3, "ticket": "T1", "status_parts": PARTS,
                "status": "".join(PARTS), "case": BRIEF, "say": "".join(PARTS)}


class Voice:
    def __init__(self, up: bool = True):
        self.up = up
        self.texts: list[str] = []

    async def synthesize(self, url, text, rate, timeout=20.0):
        if not self.up:
            raise phrases.SpeechUnavailable("voice down")
        self.texts.append(text)
        return bytes(2 * rate // 2)  # 0.5 s


@pytest.fixture(scope="module")
def prompts() -> PromptLibrary:
    return PromptLibrary(BUNDLED_PROMPTS, 8000)


@pytest.fixture
def desk(monkeypatch) -> Desk:
    d = Desk()
    d.install(monkeypatch, cases=True)
    return d


@pytest.fixture
def voice(monkeypatch) -> Voice:
    v = Voice()
    monkeypatch.setattr(phrases, "synthesize", v.synthesize)
    return v


SERVICES = {"hub_url": "http://hub.invalid", "hub_token": "t", "speech_url": "ws://speech.invalid",
            "caller": '"Zhang" <sip:13800138000@10.0.0.9:5060>'}


async def call(prompts, caller: Caller, tmp_path=None, **extra):
    menu = load_menu(BUNDLED_MENU, prompts)
    events: list[tuple[type, dict]] = []
    ctx = FlowContext(channel=caller, prompts=prompts, emit=lambda cls, **kw: events.append((cls, kw)),
                      services=CallServices(**{**SERVICES, "recordings_dir": tmp_path, **extra}))
    outcome = await run_flow(menu, ctx)
    await asyncio.sleep(0.05)  # messages report after their (absent) transcription
    return outcome, events, ctx


def of(events, cls) -> list[dict]:
    return [kw for c, kw in events if c is cls]


def path(events) -> list[str]:
    return [e["node"] for e in of(events, MenuEntered)]


def played(events) -> list[str]:
    return [e["prompt"] for e in of(events, PromptPlayed)]


def keys(events) -> str:
    return "".join(e["digits"] for e in of(events, DigitsReceived))


LOGIN = [("main_menu", "1"), ("case_number_enter", KEYPAD + "#"), ("confirm_or_retry", "1"),
         ("case_secret_enter", SECRET + "#")]


async def test_case_number_and_password_then_the_status_sentence_by_sentence(prompts, desk, voice):
    outcome, events, ctx = await call(prompts, Caller(LOGIN + [("case_status_menu", "")]))
    assert path(events) == ["welcome", "main", "case_query"]
    names = played(events)
    readback_name = next(n for n in names if n.startswith("case_readback:"))
    status = [n for n in names if n.startswith("case_status:")]
    # the call record holds the words; the status begins with a rendered phrase, played while the rest renders
    spoken = ["您查询的案件，", PARTS[0].removeprefix("您查询的案件，"), *PARTS[1:]]
    assert status == [f"case_status:{i}:{p}" for i, p in enumerate(spoken, 1)]
    assert names.index(readback_name) < names.index("confirm_or_retry") < names.index("case_secret_enter")
    assert names.index(status[-1]) < names.index("case_status_menu")
    assert voice.texts == [readback(CASE), *spoken[1:]]
    # the secret is never on the call record; the case number keys are
    assert keys(events) == "1" + KEYPAD + "#1" + "••••••#"
    assert SECRET not in repr(events)
    assert desk.secrets == [SECRET] and desk.lookups[0]["caller"] == "13800138000"
    assert isinstance(ctx.verified_case, VerifiedCase) and ctx.verified_case.ticket == "T1"
    assert outcome.cause == "case_status_done"  # silence after the menu: goodbye


async def test_star_replays_with_the_ticket_and_3_contacts_the_judge_without_a_second_check(prompts, desk, voice):
    outcome, events, _ = await call(prompts, Caller(LOGIN + [("case_status_menu", "*"), ("case_status_menu", "3")]))
    assert path(events) == ["welcome", "main", "case_query", "contact_judge"]
    names = played(events)
    assert [n for n in names if n.startswith("case_status:1:")] == ["case_status:1:您查询的案件，"] * 2
    assert desk.lookups[-1]["ticket"] == "T1"  # the replay asked the hub again, with the ticket
    assert names.count("case_secret_enter") == 1 and names.count("case_number_enter") == 1
    # no SIP host in this test: no transfer; no caller audio: no message, then the goodbye
    assert names[-2:] == ["judge_message_prompt", "judge_message_goodbye"]
    assert outcome.cause == "message_recorded"


async def test_a_key_during_the_status_stops_it(prompts, desk, voice):
    caller = Caller(LOGIN + [("case_status:2", "0")])
    outcome, events, _ = await call(prompts, caller)
    assert [n for n in played(events) if n.startswith("case_status:")] == [
        "case_status:1:您查询的案件，", f"case_status:2:{PARTS[0].removeprefix('您查询的案件，')}"]
    assert path(events)[-1] == "case_staff"
    assert of(events, HandoffRequested) == [{"node": "case_staff", "reason": "case_query", "category": "query"}]


async def test_three_wrong_secrets_lock_and_offer_an_operator(prompts, desk, voice):
    script = [("main_menu", "1"), ("case_number_enter", "26011234#"), ("confirm_or_retry", "1"),
              ("case_secret_enter", "111111#"), ("case_secret_enter", "22222*#"), ("case_secret_enter", "333333#"),
              ("case_operator_offer", "0")]
    outcome, events, _ = await call(prompts, Caller(script))
    names = played(events)
    # the hub's sentences play from their rendered twins (no voice needed)
    said = [n for n in names if n.startswith("case_say:")]
    assert said == [f"case_say:{tries_left_sentence(2)}", f"case_say:{tries_left_sentence(1)}",
                    f"case_say:{SAY_LOCKED}"]
    assert voice.texts == [readback(CASE)]
    assert path(events) == ["welcome", "main", "case_query", "case_locked", "case_staff"]
    assert desk.secrets == ["111111", "22222*", "333333"]
    assert "111111" not in repr(events) and keys(events).count("•") == 18
    assert outcome.cause == "handoff_unavailable"  # no queue in this test


async def test_case_system_down_apologises_and_offers_an_operator(prompts, desk, voice):
    desk.result = "unavailable"
    outcome, events, _ = await call(prompts, Caller([("main_menu", "1"), ("case_number_enter", KEYPAD + "#"),
                                                     ("case_operator_offer", "*"), ("main_menu", "0")]))
    assert f"case_say:{SAY_UNAVAILABLE}" in played(events)
    assert path(events) == ["welcome", "main", "case_query", "case_unavailable", "main", "operator"]


async def test_without_the_hub_the_caller_hears_the_apology(prompts, voice):
    outcome, events, _ = await call(prompts, Caller([("main_menu", "4"), ("case_operator_offer", "")]),
                                    hub_url=None)
    assert path(events) == ["welcome", "main", "urge", "case_unavailable"]
    assert "case_unavailable" in played(events) and "case_number_enter" not in played(events)
    assert outcome.cause == "no_valid_input" and played(events)[-1] == "goodbye"


async def test_unknown_numbers_are_said_and_entered_again(prompts, desk, voice):
    script = [("main_menu", "1"), ("case_number_enter", "2026*440305*1*9999#"), ("case_number_enter", "12#"),
              ("invalid_input", "2026#"), ("case_number_enter", KEYPAD + "#"), ("confirm_or_retry", "2"),
              ("case_number_enter", "")]
    outcome, events, _ = await call(prompts, Caller(script))
    said = [n for n in played(events) if n.startswith("case_say:")]
    assert said == [f"case_say:{SAY_NOT_FOUND}", f"case_say:{SAY_INVALID}"]
    assert [x["number"] for x in desk.lookups] == ["2026*440305*1*9999", "2026", KEYPAD]
    assert outcome.cause == "handoff_unavailable" and path(events)[-1] == "operator"  # three numbers, then staff


async def test_without_the_voice_digits_are_read_back_and_staff_offered(prompts, desk, monkeypatch):
    monkeypatch.setattr(phrases, "synthesize", Voice(up=False).synthesize)
    outcome, events, _ = await call(prompts, Caller(LOGIN + [("case_status_menu", "0")]))
    names = played(events)
    assert names[names.index("case_number_enter") + 1:names.index("confirm_or_retry")] == ["you_entered",
                                                                                            "say_digits"]
    # only the rendered opening is heard, then the apology
    assert [n for n in names if n.startswith("case_status:")] == ["case_status:1:您查询的案件，"]
    assert names[names.index("case_status:1:您查询的案件，") + 1] == "case_status_no_voice"
    assert path(events)[-1] == "case_staff"


async def test_the_next_sentence_renders_while_one_plays(prompts, monkeypatch):
    """The first sentence plays as soon as it alone is rendered; the second is being rendered meanwhile."""
    log: list[tuple[str, float]] = []
    loop = asyncio.get_running_loop()

    async def slow_voice(url, text, rate, timeout=20.0):
        log.append(("render", loop.time()))
        await asyncio.sleep(0.2)
        return bytes(rate)  # 0.5 s

    class Line(Caller):
        async def play(self, clip, barge_in):
            log.append(("play", loop.time()))
            await asyncio.sleep(0.3)
            return PlayResult(clip.duration_ms, False)

    monkeypatch.setattr(phrases, "synthesize", slow_voice)
    ctx = FlowContext(channel=Line([]), prompts=prompts, emit=lambda cls, **kw: None,
                      services=CallServices(**SERVICES))
    t0 = loop.time()
    spoken = await phrases.speak_parts(ctx, PARTS[1:] + ["执行情况：已冻结被执行人银行存款。"], "case_status")
    assert spoken.played == 3 and not spoken.failed
    kinds = [k for k, _ in log]
    assert kinds == ["render", "play"] * 3
    assert log[2][1] - log[1][1] < 0.05  # the second sentence renders from the moment the first plays
    first_play = log[1][1] - t0
    assert 0.15 <= first_play < 0.35  # one render, not three
    assert loop.time() - t0 < 0.2 + 3 * 0.3 + 0.25  # renders hidden behind playback


async def test_messages_for_the_judge_and_urges_carry_the_case(prompts, desk, voice, tmp_path):
    caller = TalkingCaller(LOGIN + [("case_status_menu", "3"), ("record_confirm", "1")], voice_s=1.5)
    outcome, events, _ = await call(prompts, caller, tmp_path)
    msgs = of(events, MessageRecorded)
    assert [(m["purpose"], m["case_number"]) for m in msgs] == [("contact_judge", CASE)]
    assert msgs[0]["recording"] == "case-test-contact_judge.wav" and (tmp_path / msgs[0]["recording"]).exists()
    assert played(events)[-1] == "judge_message_goodbye" and outcome.cause == "message_recorded"

    urge = TalkingCaller([("main_menu", "4"), ("case_number_enter", KEYPAD + "#"), ("confirm_or_retry", "1"),
                          ("case_secret_enter", SECRET + "#"), ("record_confirm", "1")], voice_s=1.0)
    _, events, _ = await call(prompts, urge, tmp_path)
    assert [(m["purpose"], m["case_number"]) for m in of(events, MessageRecorded)] == [("urge", CASE)]
    assert played(events)[-1] == "urge_goodbye"


async def test_a_complaint_is_recorded_and_staff_offered(prompts, voice, tmp_path):
    caller = TalkingCaller([("main_menu", "5"), ("record_confirm", "2"), ("record_confirm", "1"),
                            ("complaint_recorded", "1")], voice_s=1.0)
    outcome, events, _ = await call(prompts, caller, tmp_path)
    assert played(events).count("beep") == 2  # recorded again after 2
    msgs = of(events, MessageRecorded)
    assert [(m["purpose"], m["case_number"]) for m in msgs] == [("complaint", "")]
    assert path(events) == ["welcome", "main", "complaint", "complaint_staff"]
    assert of(events, HandoffRequested)[0]["category"] == "complaint"

    _, events, _ = await call(prompts, TalkingCaller([("main_menu", "6")], voice_s=1.0), tmp_path)
    assert [m["purpose"] for m in of(events, MessageRecorded)] == ["suggestion"]
    assert played(events)[-1] == "suggestion_goodbye"


async def test_a_status_that_begins_with_a_rendered_phrase_starts_at_once(prompts, monkeypatch):
    log: list[str] = []

    async def slow_voice(url, text, rate, timeout=20.0):
        log.append(f"render {text}")
        await asyncio.sleep(0.1)
        return bytes(rate)

    class Line(Caller):
        async def play(self, clip, barge_in):
            log.append(f"play {clip.name}")
            await asyncio.sleep(0.2)
            return PlayResult(clip.duration_ms, False)

    monkeypatch.setattr(phrases, "synthesize", slow_voice)
    ctx = FlowContext(channel=Line([]), prompts=prompts, emit=lambda cls, **kw: None,
                      services=CallServices(**SERVICES))
    spoken = await phrases.speak_parts(ctx, PARTS[:1], "case_status")
    rest = PARTS[0].removeprefix("您查询的案件，")
    assert spoken.played == 2
    assert log == ["play case_status:1:您查询的案件，", f"render {rest}", f"play case_status:2:{rest}"]
    whole = ["您查询的案件，", "您查询的案件"]  # a phrase alone, or without its clause mark, stays as it is
    assert phrases.split_fixed(whole, {"您查询的案件，": "x"}) == whole


def test_the_hubs_sentences_have_rendered_twins():
    """court_cases/spoken.py's fixed sentences are prompts with the same words (they play without the voice)."""
    texts = set(yaml.safe_load((BUNDLED_PROMPTS / "prompts.yaml").read_text(encoding="utf-8")).values())
    local = phrases.local_phrases(BUNDLED_PROMPTS)
    for sentence in (SAY_UNAVAILABLE, SAY_NOT_FOUND, SAY_INVALID, SAY_LOCKED, tries_left_sentence(2),
                     tries_left_sentence(1)):
        assert sentence in texts and sentence in local, sentence


def test_helpers():
    assert mask_case(CASE) == "（2026）粤0305民初****号" and mask_case("26011234") == "******34"
    assert caller_number('"Zhang" <sip:13800138000@10.0.0.9:5060>;tag=1') == "13800138000"
    assert caller_number("<sip:anonymous@anonymous.invalid>") == "" and caller_number(None) == ""
    assert judge_target("sip:8101@pbx.court.example", None) == "sip:8101@pbx.court.example"
    assert judge_target("8101", "pbx.court") == "sip:8101@pbx.court"
    assert judge_target("8101", None) is None and judge_target("", "pbx") is None
