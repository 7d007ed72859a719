"""The callback conversation (ivr/callback.py) on a scripted citizen with a stand-in voice and recognizer: greeting,
the summary in the voice (or the fixed sentence when the voice is down), the rating question with retries, keys
pressed too early dropped, a spoken rating; and the reading of spoken ratings."""

from __future__ import annotations

import asyncio
from collections import deque

import pytest

from ivr import callback, phrases
from ivr.audio import Clip, PromptLibrary
from ivr.callback import converse, rating_from_speech, summary_parts
from ivr.contract import CallbackCommand
from ivr.flow.channel import PlayResult
from ivr.flow.context import FlowContext
from ivr.flow.services import CallServices
from ivr.settings import BUNDLED_PROMPTS
from ivr.speech_client import Heard, SpeechUnavailable
from tests.fakes import FakeChannel

SUMMARY = "已转告王明法官。法官助理将于明日上午回电，请保持电话畅通！"


class Citizen(FakeChannel):
    """Presses keys when the prompt the script's next entry names begins; prompts end at once unless a key
    interrupts them (barge-in)."""

    call_id = "cb-test"
    hears = True

    def __init__(self, script: list[tuple[str, str]]):
        super().__init__()
        self.script = deque(script)

    async def play(self, clip: Clip, barge_in: bool) -> PlayResult:
        self.played.append(clip.name)
        key = self.script[0][0] if self.script else None
        if key is not None and (clip.name == key or clip.name.startswith(key + ":")):
            self.pending.extend(self.script.popleft()[1])
        if barge_in and self.pending:
            return PlayResult(0, True)
        await asyncio.sleep(0)
        return PlayResult(clip.duration_ms, False)

    async def next_digit(self, timeout: float):
        await asyncio.sleep(0)
        return await super().next_digit(timeout)

    async def audio_chunks(self):
        while True:
            await asyncio.sleep(0.01)
            yield bytes(1600)


@pytest.fixture(scope="module")
def prompts():
    return PromptLibrary(BUNDLED_PROMPTS, 8000)


@pytest.fixture
def voice(monkeypatch):
    said: list[str] = []

    async def synthesize(url, text, rate, timeout=20.0):
        said.append(text)
        return bytes(2 * rate // 10)

    monkeypatch.setattr(phrases, "synthesize", synthesize)
    return said


@pytest.fixture
def no_voice(monkeypatch):
    async def synthesize(url, text, rate, timeout=20.0):
        raise SpeechUnavailable("down")

    monkeypatch.setattr(phrases, "synthesize", synthesize)


def hears(monkeypatch, *texts: str):
    """The recognizer hears these finals, one per question (then nothing: no input)."""
    queue = deque(texts)

    async def recognize(url, audio, rate, config):
        await asyncio.sleep(0)
        if queue:
            text = queue.popleft()
            if text == "DOWN":
                raise SpeechUnavailable("down")
            yield Heard("final", text, 0.9, 1.0)
        else:
            yield Heard("no_input")

    import ivr.listening

    monkeypatch.setattr(ivr.listening, "recognize", recognize)


def run(prompts, citizen: Citizen, speech_url: str | None = "ws://speech", purpose: str = "rating",
        summary: str = SUMMARY):
    events: list[tuple[str, dict]] = []
    reports: list[tuple[str, dict]] = []
    ctx = FlowContext(channel=citizen, prompts=prompts, node="callback",
                      emit=lambda cls, **kw: events.append((cls.__name__, kw)),
                      services=CallServices(speech_url=speech_url))
    cmd = CallbackCommand(call_id="cb-test", order_id=7, order_number="12368-20261130-0007", attempt=1,
                          target="sip:13800000000@pbx", summary=summary, purpose=purpose)
    cause = asyncio.run(converse(ctx, cmd, lambda outcome, **kw: reports.append((outcome, kw))))
    return cause, reports, events


def test_greeting_summary_in_the_voice_then_a_key_rates(prompts, voice):
    citizen = Citizen([("callback_greeting", "9"), ("callback_rating", "5")])  # 9: too early, dropped
    cause, reports, events = run(prompts, citizen, speech_url=None)
    # no speech service configured: no voice either, so the fixed sentence
    assert citizen.played[:3] == ["callback_greeting", "callback_no_summary", "callback_rating"]
    assert reports == [("rated", {"rating": 5, "method": "keypad"})] and cause == "callback_rated"
    assert citizen.played[-1] == "callback_thanks" and voice == []

    citizen = Citizen([("callback_rating", "4")])
    hears_nothing = citizen  # the recognizer is not asked: the key comes first
    cause, reports, events = run(prompts, hears_nothing)
    parts = summary_parts(SUMMARY)
    assert voice == parts == ["已转告王明法官。", "法官助理将于明日上午回电，请保持电话畅通！"]
    names = citizen.played
    assert names[:2] == ["callback_greeting", "callback_summary_lead"]
    assert names[2:4] == [f"callback_summary:{i + 1}:{phrases.text_hash(p)}" for i, p in enumerate(parts)]
    assert names[4] == "callback_rating" and reports == [("rated", {"rating": 4, "method": "keypad"})]
    played = [kw["prompt"] for name, kw in events if name == "PromptPlayed"]
    assert not any("王明" in p for p in played)  # the record names the summary by a hash, not its words
    assert [kw["node"] for name, kw in events if name == "MenuEntered"] == ["callback", "callback_rating"]
    assert [kw["digits"] for name, kw in events if name == "DigitsReceived"] == ["4"]


@pytest.mark.parametrize("summary", ["", SUMMARY])
def test_an_after_hours_callback_says_the_message_was_received_and_asks_no_rating(prompts, voice, summary):
    """Issue 16 part 7: the callback promised after hours: the message was received, then the handler's answer in
    the voice when the order has one, else that it is being handled; keys do nothing; reached, no rating."""
    citizen = Citizen([("callback_after_hours", "5")])
    cause, reports, events = run(prompts, citizen, purpose="after_hours", summary=summary)
    assert reports == [("reached", {})] and cause == "callback_reached"
    n = len(summary_parts(summary))
    middle = (["callback_summary_lead", *[f"callback_summary:{i + 1}" for i in range(n)]] if summary
              else ["callback_after_hours_pending"])
    assert [p.rsplit(":", 1)[0] if p.startswith("callback_summary:") else p for p in citizen.played] == [
        "callback_after_hours", *middle, "callback_after_hours_bye"]
    assert voice == summary_parts(summary) and "callback_rating" not in citizen.played
    assert prompts.get("callback_after_hours").duration_ms > 3000  # rendered, not a stub


def test_the_voice_down_plays_the_fixed_sentence(prompts, no_voice, monkeypatch):
    hears(monkeypatch, "DOWN")  # the recognizer is down too: keys only, from then on
    citizen = Citizen([("callback_rating_say", "8"), ("invalid_input", "2")])
    cause, reports, events = run(prompts, citizen)
    assert citizen.played[:2] == ["callback_greeting", "callback_no_summary"]
    assert citizen.played[2:] == ["callback_rating", "callback_rating_say", "invalid_input", "callback_thanks"]
    assert reports == [("rated", {"rating": 2, "method": "keypad"})]
    assert [kw["kind"] for name, kw in events if name == "SpeechHeard"] == ["unavailable"]  # asked once


def test_a_spoken_rating_counts(prompts, voice, monkeypatch):
    hears(monkeypatch, "嗯，非常满意。")
    citizen = Citizen([])
    cause, reports, events = run(prompts, citizen)
    assert reports == [("rated", {"rating": 5, "method": "speech"})] and cause == "callback_rated"
    assert [kw["kind"] for name, kw in events if name == "SpeechHeard"] == ["final"]


def test_wrong_keys_and_silence_are_asked_again_then_no_rating(prompts, voice, monkeypatch):
    # words that are no rating, then 7 (which interrupts the retry prompt), then silence: no rating
    hears(monkeypatch, "我不知道")
    citizen = Citizen([("invalid_input", "7")])
    cause, reports, events = run(prompts, citizen)
    assert reports == [("no_rating", {})] and cause == "callback_no_rating"
    asked = [p for p in citizen.played if p in ("invalid_input", "no_input", "callback_rating")]
    assert asked == ["callback_rating", "invalid_input", "invalid_input", "callback_rating"]
    assert [kw["digits"] for name, kw in events if name == "DigitsReceived"] == ["7"]
    assert citizen.played[-1] == "callback_bye"

    citizen = Citizen([("no_input", "3")])
    hears(monkeypatch)  # silence, then 3 after the retry prompt
    _, reports, _ = run(prompts, citizen, speech_url=None)
    assert reports == [("rated", {"rating": 3, "method": "keypad"})]


@pytest.mark.parametrize("text,rating", [
    ("非常满意", 5), ("很满意。", 5), ("满意", 4), ("比较满意", 4), ("一般吧", 3), ("还行", 3), ("不满意", 2),
    ("不太满意", 2), ("非常不满意！", 1), ("很不满意", 1), ("五", 5), ("5", 5), ("三分", 3), ("我给四分", 4),
    ("按二", 2), ("一", 1), ("两分", 2), ("", None), ("我不知道", None), ("十二", None), ("6", None),
])
def test_spoken_ratings(text, rating):
    assert rating_from_speech(text) == rating


def test_summary_parts_split_sentences_and_long_clauses():
    long = "，".join(["承办部门已经联系了执行法官并核实了执行款的发放进度"] * 4) + "。"
    parts = summary_parts("第一句。" + long + "第三句")
    assert parts[0] == "第一句。" and parts[-1] == "第三句" and all(len(p) <= callback.LONG_PART for p in parts)
    assert "".join(parts) == "第一句。" + long + "第三句"
    assert summary_parts("  ") == []
