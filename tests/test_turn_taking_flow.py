"""Issue 14, turn taking. A caller talking over a prompt holds it at the speech onset and stops it when the speech is
an utterance (a cough lets it go on). A question the knowledge base answers, confirms or lists gets its reply on
the recognizer's speculative text (~0.2 s into the caller's pause), not after the full end silence; a caller who
goes on talking stops that reply and the whole utterance is taken; a handoff waits for the endpoint. A scripted
caller, a stand-in recognizer (its messages in order, as the speech service sends them) and a stand-in hub."""

from __future__ import annotations

import asyncio

import pytest

import ivr.listening
from ivr import phrases
from ivr.audio import Clip, PromptLibrary
from ivr.contract import KbDecided, PromptPlayed, SpeechHeard
from ivr.flow.channel import PlayResult
from ivr.flow.context import FlowContext
from ivr.flow.engine import run_flow
from ivr.flow.menu import load_menu
from ivr.flow.services import CallServices
from ivr.settings import BUNDLED_MENU, BUNDLED_PROMPTS
from ivr.speech_client import Heard
from tests.fakes import FakeChannel, FakeHubApi

MENU = """
start: ask
nodes:
  ask:
    - listen: {prompt: consult_intro, store: question, on_failure: staff, quick_answer: true}
    - kb_answer: {question: "{question}", on_handoff: staff}
  staff:
    - hangup: {cause: staff}
"""
ASKED, MORE = "怎么申请强制执行", "怎么申请强制执行需要带什么材料"
F045 = {"decision": "answer", "faq_id": "F045", "score": 0.93, "offered": [], "reason": "p=0.99",
        "answer_text": "申请强制执行请到立案窗口。"}
F046 = {"decision": "answer", "faq_id": "F046", "score": 0.9, "offered": [], "reason": "p=0.98",
        "answer_text": "申请执行需要带判决书和身份证。"}


class Caller(FakeChannel):
    """Answers play 0.5 s unless stopped (barge-in); presses 1 ("解决了") at the follow-up."""

    call_id = "quick-test"
    hears = True

    def __init__(self):
        super().__init__()
        self.timeline: list[str] = []
        self.answer_started = asyncio.Event()
        self.reply_started = asyncio.Event()  # a confirm or a list
        self._stop: asyncio.Event | None = None

    async def play(self, clip: Clip, barge_in: bool) -> PlayResult:
        self.played.append(clip.name)
        if clip.name == "kb_follow_up":
            self.pending.append("1")
        if not clip.name.startswith(("kb_answer:", "kb_confirm:", "kb_clarify")):
            await asyncio.sleep(0)
            return PlayResult(clip.duration_ms, False)
        self.timeline.append(f"{'answer' if clip.name.startswith('kb_answer:') else 'reply'} {clip.name}")
        self._stop = asyncio.Event()
        (self.answer_started if clip.name.startswith("kb_answer:") else self.reply_started).set()
        try:
            await asyncio.wait_for(self._stop.wait(), 0.5)
            return PlayResult(40, True)
        except TimeoutError:
            return PlayResult(clip.duration_ms, False)
        finally:
            self._stop = None

    def stop_prompt(self) -> None:
        self.stopped += 1
        self.timeline.append("stop")
        if self._stop is not None:
            self._stop.set()

    def hold_prompt(self, held: bool) -> None:
        self.held.append(held)
        self.timeline.append(f"hold {held}")

    async def audio_chunks(self):
        while True:
            await asyncio.sleep(0.01)
            yield bytes(1600)


def run(tmp_path, monkeypatch, caller: Caller, turns: list, kb: dict[str, dict], hub_delay_s: float = 0.0):
    """``turns``: one script per recognition session, each a list of Heard, "wait_answer" (until an answer plays,
    at most 1 s), "wait_reply" (a confirm or a list) or a pause in seconds."""
    menu = tmp_path / "menu.yaml"
    menu.write_text(MENU, encoding="utf-8")
    scripts = list(turns)

    async def recognize(url, audio, rate, config):
        script = scripts.pop(0) if scripts else [Heard("no_input")]
        for step in script:
            if step in ("wait_answer", "wait_reply"):
                started = caller.answer_started if step == "wait_answer" else caller.reply_started
                await asyncio.wait_for(started.wait(), 1.0)
            elif isinstance(step, float):
                await asyncio.sleep(step)
            else:
                caller.timeline.append(f"{step.kind} {step.text}".strip())
                yield step

    async def synthesize(url, text, rate, timeout=20.0):
        return bytes(2 * rate // 10)

    monkeypatch.setattr(ivr.listening, "recognize", recognize)
    monkeypatch.setattr(phrases, "synthesize", synthesize)
    hub = FakeHubApi(kb=kb, delay_s=hub_delay_s).install(monkeypatch)
    events: list[tuple[type, dict]] = []
    prompts = PromptLibrary(BUNDLED_PROMPTS, 8000)
    ctx = FlowContext(channel=caller, prompts=prompts, emit=lambda cls, **kw: events.append((cls, kw)),
                      services=CallServices(speech_url="ws://speech", hub_url="http://hub", hub_token="t"))
    outcome = asyncio.run(asyncio.wait_for(run_flow(load_menu(menu, prompts), ctx), 20))
    return outcome, events, hub, ctx


def of(events, cls) -> list[dict]:
    return [kw for c, kw in events if c is cls]


def spec(text: str) -> Heard:
    return Heard("speculative", text, 0.9, None, 0.45)


def test_an_answer_starts_on_the_speculative_text_before_the_endpoint(tmp_path, monkeypatch):
    caller = Caller()
    outcome, events, hub, ctx = run(tmp_path, monkeypatch, caller, [
        [Heard("started"), spec(ASKED), "wait_answer", Heard("final", ASKED, 0.9, 2.0, 0.7)]], {ASKED: F045})
    assert outcome.cause == "answered_by_kb"
    # the answer began before the recognizer's endpoint, on the hub's one decision
    assert caller.timeline.index("answer kb_answer:F045") < caller.timeline.index(f"final {ASKED}"), caller.timeline
    assert [a[0] for a in hub.asked] == [ASKED] and hub.asked[0][2] == 0.9
    assert [d["faq_id"] for d in of(events, KbDecided)] == ["F045"]
    finals = [e for e in of(events, SpeechHeard) if e["kind"] == "final"]
    # taken on the speculative text (on the record as such); the endpoint's final adds nothing
    assert [(f["text"], f["latency_s"], f.get("early")) for f in finals] == [(ASKED, 0.45, True)]
    played = of(events, PromptPlayed)
    assert [p["prompt"] for p in played][-3:] == ["kb_answer:F045", "kb_follow_up", "goodbye"]
    assert not played[-3]["interrupted"] and ctx.vars["question"] == ASKED


def test_a_caller_who_goes_on_stops_the_early_answer_and_the_whole_question_is_taken(tmp_path, monkeypatch):
    caller = Caller()
    outcome, events, hub, ctx = run(tmp_path, monkeypatch, caller, [
        [Heard("started"), spec(ASKED), "wait_answer", 0.05, Heard("resumed"), 0.2,
         Heard("final", MORE, 0.88, 3.1, 0.65)]], {ASKED: F045, MORE: F046})
    assert outcome.cause == "answered_by_kb"
    played = of(events, PromptPlayed)
    first = next(p for p in played if p["prompt"] == "kb_answer:F045")
    assert first["interrupted"] and first["played_ms"] < 200  # stopped at once
    assert [p["prompt"] for p in played][-3:] == ["kb_answer:F046", "kb_follow_up", "goodbye"]
    assert [a[0] for a in hub.asked] == [ASKED, MORE]
    assert [d["faq_id"] for d in of(events, KbDecided)] == ["F045", "F046"]
    finals = [e["text"] for e in of(events, SpeechHeard) if e["kind"] == "final"]
    assert finals == [ASKED, MORE] and ctx.vars["question"] == MORE


CONFIRM = {"decision": "confirm", "faq_id": "F045", "score": 0.6, "offered": ["F045"], "reason": "p=0.7",
           "answer_text": F045["answer_text"], "question_text": ASKED,
           "choices": [{"id": "F045", "title": "申请强制执行", "answer_text": F045["answer_text"]}]}
CLARIFY = {"decision": "clarify", "faq_id": "F045", "score": 0.5, "offered": ["F045", "F046"], "reason": "p=0.5",
           "choices": [{"id": "F045", "title": "申请强制执行", "answer_text": F045["answer_text"]},
                       {"id": "F046", "title": "申请执行的材料", "answer_text": F046["answer_text"]}]}


@pytest.mark.parametrize("decision", ["confirm", "clarify"])
def test_a_confirm_or_a_list_starts_on_the_speculative_text_and_the_reply_is_heard_after_the_endpoint(
        tmp_path, monkeypatch, decision):
    caller = Caller()
    reply = Heard("final", "对", 0.9, 0.5, 0.4) if decision == "confirm" else Heard("final", "第二个", 0.9, 0.6, 0.4)
    outcome, events, hub, _ = run(tmp_path, monkeypatch, caller, [
        [Heard("started"), spec("申请执行"), "wait_reply", 0.05, Heard("final", "申请执行", 0.9, 1.5, 0.7)],
        [Heard("started"), reply]], {"申请执行": CONFIRM if decision == "confirm" else CLARIFY})
    # the question is spoken back before the recognizer's endpoint, on the hub's one decision
    first_reply = next(x for x in caller.timeline if x.startswith("reply "))
    assert caller.timeline.index(first_reply) < caller.timeline.index("final 申请执行"), caller.timeline
    # the caller's reply is listened for only after the question's endpoint (one audio stream)
    assert caller.timeline.index("final 申请执行") < caller.timeline.index(f"final {reply.text}"), caller.timeline
    assert [a[0] for a in hub.asked] == ["申请执行"] and [d["decision"] for d in of(events, KbDecided)] == [decision]
    picked = "kb_answer:F045" if decision == "confirm" else "kb_answer:F046"
    assert f"answer {picked}" in caller.timeline and outcome.cause == "answered_by_kb"


def test_a_caller_who_goes_on_over_an_early_confirm_stops_it_and_the_whole_question_is_taken(tmp_path, monkeypatch):
    caller = Caller()
    outcome, events, hub, ctx = run(tmp_path, monkeypatch, caller, [
        [Heard("started"), spec("申请执行"), "wait_reply", 0.05, Heard("resumed"), 0.2,
         Heard("final", MORE, 0.88, 3.1, 0.65)]], {"申请执行": CONFIRM, MORE: F046})
    played = of(events, PromptPlayed)
    confirm = next(p for p in played if p["prompt"].startswith("kb_confirm:"))
    assert confirm["interrupted"] and confirm["played_ms"] < 200  # stopped at once
    assert [a[0] for a in hub.asked] == ["申请执行", MORE]
    assert [d["decision"] for d in of(events, KbDecided)] == ["confirm", "answer"]
    assert "answer kb_answer:F046" in caller.timeline and outcome.cause == "answered_by_kb"
    assert ctx.vars["question"] == MORE


def test_a_question_handed_off_waits_for_the_endpoint(tmp_path, monkeypatch):
    handoff = {"decision": "handoff", "faq_id": None, "score": 0.2, "offered": [], "reason": "p=0.1"}
    caller = Caller()
    outcome, events, hub, _ = run(tmp_path, monkeypatch, caller, [
        [Heard("started"), spec("我要找人"), 0.15, Heard("final", "我要找人", 0.9, 1.5, 0.7)]], {"我要找人": handoff})
    # no early end (the final may say more), but the decision on the speculative text serves the final: one trip
    assert caller.timeline.index("final 我要找人") > caller.timeline.index("speculative 我要找人")
    assert [a[0] for a in hub.asked] == ["我要找人"]
    assert [d["decision"] for d in of(events, KbDecided)] == ["handoff"]
    assert outcome.cause == "staff"


def test_a_final_that_comes_while_the_early_decision_is_on_its_way_waits_for_it_instead_of_asking_again(
        tmp_path, monkeypatch):
    caller = Caller()
    outcome, events, hub, _ = run(tmp_path, monkeypatch, caller, [
        [Heard("started"), spec(ASKED), 0.05, Heard("final", ASKED, 0.9, 2.0, 0.7)]], {ASKED: F045}, hub_delay_s=0.2)
    # the endpoint came first (no early end), but the hub was asked once: the decision already on its way serves it
    assert caller.timeline.index(f"final {ASKED}") < caller.timeline.index("answer kb_answer:F045"), caller.timeline
    assert [a[0] for a in hub.asked] == [ASKED] and [d["faq_id"] for d in of(events, KbDecided)] == ["F045"]
    assert outcome.cause == "answered_by_kb"


@pytest.mark.parametrize("menu", [BUNDLED_MENU])
def test_the_bundled_consult_menu_answers_early(menu):
    nodes = load_menu(menu, PromptLibrary(BUNDLED_PROMPTS, 8000)).nodes
    assert nodes["consult"][0].quick_answer is True


@pytest.mark.parametrize("cough", [True, False])
def test_a_speech_onset_holds_the_prompt_and_only_an_utterance_stops_it(tmp_path, monkeypatch, cough):
    caller = Caller()
    script = [Heard("onset"), 0.7, Heard("no_input")] if cough else \
        [Heard("onset"), 0.1, Heard("started"), Heard("final", ASKED, 0.9, 2.0, 0.7)]
    run(tmp_path, monkeypatch, caller, [script, [Heard("no_input")]], {ASKED: F045})
    first = caller.timeline[: caller.timeline.index("no_input" if cough else f"final {ASKED}") + 1]
    if cough:  # held, then let go on when no utterance came within the hold
        assert first == ["onset", "hold True", "hold False", "no_input"], caller.timeline
    else:  # held at the onset, stopped when it became an utterance (and not let go on)
        assert first == ["onset", "hold True", "started", "stop", f"final {ASKED}"], caller.timeline


def test_a_final_other_than_the_speculative_text_is_matched_again(tmp_path, monkeypatch):
    caller = Caller()
    _, events, hub, _ = run(tmp_path, monkeypatch, caller, [
        [Heard("started"), spec("申请"), Heard("resumed"), 0.1, Heard("final", ASKED, 0.9, 1.5, 0.7)]], {ASKED: F045})
    assert [a[0] for a in hub.asked][-1] == ASKED and [d["faq_id"] for d in of(events, KbDecided)] == ["F045"]
    assert "kb_answer:F045" in caller.played
