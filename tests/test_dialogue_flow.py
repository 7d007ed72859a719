"""The caller dialogue (issue 13, parts 3 and 4) on the bundled menu with a scripted caller, a stand-in recognizer,
voice and hub: speech at the main menu (options, questions, keys winning), the clarify list (said or keyed, barge-in,
都不是, silence), the spoken yes/no confirm, and what the call record gets."""

from __future__ import annotations

import asyncio
from collections import deque

import pytest

import ivr.hearing
import ivr.kb_dialog
import ivr.listening
import ivr.menu_speech
from ivr import phrases
from ivr.audio import Clip, PromptLibrary
from ivr.contract import KbClarified, KbDecided, MenuEntered, MenuSpeech, PromptPlayed, SpeechHeard
from ivr.flow.channel import PlayResult
from ivr.flow.context import FlowContext
from ivr.flow.engine import run_flow
from ivr.flow.menu import MenuError, load_menu, parse_menu
from ivr.flow.services import CallServices
from ivr.settings import BUNDLED_MENU, BUNDLED_PROMPTS
from ivr.speech_client import Heard
from ivr.voice_cache import VoiceCache
from tests.fakes import FakeChannel, FakeHubApi

FEES = [("F101", "诉讼费怎么交", "诉讼费可以在立案窗口或网上交。"),
        ("F102", "诉讼费退费", "诉讼费退费请在结案后申请。"),
        ("F103", "诉讼费减免", "交不起诉讼费可以申请减免。")]


class Caller(FakeChannel):
    """Acts when the prompt the script's next entry names begins (a name ending in ":" is a prefix): presses keys
    ("2"), says something ("say:第二个"; speaking stops the prompt), or both ("1&say:…"). Prompts end at once unless
    interrupted."""

    call_id = "dlg-test"
    hears = True

    def __init__(self, script: list[tuple[str, str]]):
        super().__init__()
        self.script = deque(script)
        self.speech: asyncio.Queue[str] = asyncio.Queue()
        self.interrupted: list[str] = []

    async def play(self, clip: Clip, barge_in: bool) -> PlayResult:
        self.played.append(clip.name)
        spoke = False
        key = self.script[0][0] if self.script else None
        if key is not None and (clip.name == key or (key.endswith(":") and clip.name.startswith(key))):
            for action in self.script.popleft()[1].split("&"):
                if action.startswith("say:"):
                    self.speech.put_nowait(action[4:])
                    spoke = True
                else:
                    self.pending.extend(action)
        stopped = (barge_in and bool(self.pending)) or spoke
        await asyncio.sleep(0)
        if stopped:
            self.interrupted.append(clip.name)
            return PlayResult(0, True)
        return PlayResult(clip.duration_ms, False)

    async def next_digit(self, timeout: float):
        if not self.pending:
            await asyncio.sleep(min(timeout, 0.02))
        return await super().next_digit(timeout)

    async def audio_chunks(self):
        while True:
            await asyncio.sleep(0.01)
            yield bytes(1600)


@pytest.fixture(scope="module")
def prompts():
    return PromptLibrary(BUNDLED_PROMPTS, 8000)


@pytest.fixture(autouse=True)
def voice(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # messages recorded in menus 5 and 6 land in ./recordings
    said: list[str] = []

    async def synthesize(url, text, rate, timeout=20.0):
        said.append(text)
        return bytes(2 * rate // 10)

    monkeypatch.setattr(phrases, "synthesize", synthesize)
    return said


def Hub(monkeypatch, replies: dict[str, dict]) -> FakeHubApi:
    """Stands in for /internal/kb/match: replies by the text asked; records every request."""
    return FakeHubApi(kb=replies).install(monkeypatch)


def clarify_reply(ids=("F101", "F102", "F103")) -> dict:
    rows = {f: (t, a) for f, t, a in FEES}
    return {"decision": "clarify", "faq_id": ids[0], "score": 0.61, "margin": 0.02, "reason": "p=0.55, 3 close",
            "offered": list(ids), "choices": [{"id": i, "title": rows[i][0], "answer_text": rows[i][1]} for i in ids]}


def walk(prompts, caller: Caller, monkeypatch, menu=BUNDLED_MENU, voice_cache: VoiceCache | None = None):
    """Run the bundled flow; the recognizer hears what the caller says, else no input (after a short wait).
    "say:A|B|C": heard as A, with B and C as its next hypotheses when the dialogue asks for alternatives."""

    async def recognize(url, audio, rate, config):
        try:
            text = await asyncio.wait_for(caller.speech.get(), 0.3)
        except TimeoutError:
            yield Heard("no_input")
            return
        yield Heard("started")
        best, *others = text.split("|")
        n = config.get("alternatives", 0)
        yield Heard("final", best, 0.87, 1.2, 0.3, raw={"alternatives": others[:n]} if others and n else {})

    monkeypatch.setattr(ivr.listening, "recognize", recognize)  # hearing.py listens through listening.py
    events: list[tuple[type, dict]] = []
    ctx = FlowContext(channel=caller, prompts=prompts, emit=lambda cls, **kw: events.append((cls, kw)),
                      services=CallServices(speech_url="ws://speech", hub_url="http://hub", hub_token="t",
                                            voice_cache=voice_cache))
    outcome = asyncio.run(asyncio.wait_for(run_flow(load_menu(menu, prompts), ctx), 30))
    return outcome, events


def of(events, cls) -> list[dict]:
    return [kw for c, kw in events if c is cls]


def path(events) -> list[str]:
    return [kw["node"] for kw in of(events, MenuEntered)]


def played(events) -> list[str]:
    return [kw["prompt"] for kw in of(events, PromptPlayed)]


# ------------------------------------------------------------------------------------------ the main menu


def test_saying_the_business_at_the_main_menu_goes_to_its_node(prompts, monkeypatch):
    hub = Hub(monkeypatch, {"我想投诉一下承办法官": {"decision": "answer", "option": "5", "offered": [],
                                             "reason": "option 投诉信访 p=0.97", "score": 0.9}})
    # said outright (an option's phrase): no hub needed
    _, events = walk(prompts, Caller([("main_menu_speech", "say:我要投诉"), ("complaint_message_prompt", "#")]),
                     monkeypatch)
    assert path(events)[:3] == ["welcome", "main", "complaint"]
    assert of(events, MenuSpeech) == [{"node": "main", "text": "我要投诉", "confidence": 0.87, "outcome": "option",
                                       "option": "5", "target": "complaint", "decision": None, "faq_id": None,
                                       "score": None, "reason": ""}]
    assert hub.asked == []
    # in other words: the matcher ranks the menu's options (titles and phrases sent along)
    _, events = walk(prompts, Caller([("main_menu", "say:我想投诉一下承办法官")]), monkeypatch)
    assert path(events)[:3] == ["welcome", "main", "complaint"]
    text, menu, confidence = hub.asked[0]
    assert text == "我想投诉一下承办法官" and confidence == 0.87 and menu.name == "main"
    options = {o.key: o for o in menu.options}
    assert set(options) == set("1234560*") and options["5"].title == "投诉信访" and "我要投诉" in options["5"].phrases
    assert of(events, MenuSpeech)[0]["option"] == "5" and of(events, MenuSpeech)[0]["decision"] == "answer"


def test_repeat_and_operator_by_voice_and_a_key_wins_over_speech(prompts, monkeypatch):
    Hub(monkeypatch, {})
    _, events = walk(prompts, Caller([("main_menu_speech", "say:再听一遍"), ("main_menu", "say:转人工")]), monkeypatch)
    assert path(events)[:4] == ["welcome", "main", "main", "operator"]
    assert [e["option"] for e in of(events, MenuSpeech)] == ["*", "0"]
    # a key and speech during the same prompt: the key wins
    _, events = walk(prompts, Caller([("main_menu_speech", "say:我要投诉&1")]), monkeypatch)
    assert path(events)[:3] == ["welcome", "main", "case_query"]
    assert of(events, MenuSpeech) == []


def test_a_question_at_the_main_menu_is_answered_there(prompts, monkeypatch, voice):
    hub = Hub(monkeypatch, {"诉讼费什么时候退": {"decision": "answer", "faq_id": "F012", "score": 0.93, "offered": [],
                                          "reason": "p=0.99", "answer_text": "诉讼费在结案后退还。"}})
    outcome, events = walk(prompts, Caller([("main_menu", "say:诉讼费什么时候退"), ("kb_follow_up", "1")]),
                           monkeypatch)
    assert outcome.cause == "answered_by_kb"
    assert path(events) == ["welcome", "main"]
    assert played(events)[-3:] == ["kb_answer:F012", "kb_follow_up", "goodbye"]
    assert voice == ["诉讼费在结案后退还。"]
    assert of(events, MenuSpeech)[0]["outcome"] == "question" and of(events, MenuSpeech)[0]["faq_id"] == "F012"
    assert of(events, KbDecided)[0]["node"] == "main" and of(events, KbDecided)[0]["query"] == "诉讼费什么时候退"
    assert hub.asked[0][1] is not None  # asked with the menu's options


def test_a_workers_callers_asking_the_same_question_get_its_answer_fetched_once(prompts, monkeypatch, voice):
    Hub(monkeypatch, {"诉讼费什么时候退": {"decision": "answer", "faq_id": "F012", "score": 0.93, "offered": [],
                                     "reason": "p=0.99", "answer_text": "诉讼费在结案后退还。"},
                      "诉讼费的事": clarify_reply()})
    cache = VoiceCache(max_bytes=10_000)
    for _ in range(2):
        outcome, events = walk(prompts, Caller([("main_menu", "say:诉讼费什么时候退"), ("kb_follow_up", "1")]),
                               monkeypatch, voice_cache=cache)
        assert outcome.cause == "answered_by_kb" and played(events)[-3] == "kb_answer:F012"
    assert voice == ["诉讼费在结案后退还。"] and cache.hits == 1
    # a list's items too; the least recently used sentence goes first when the cache is full (1,600 bytes each)
    walk(prompts, Caller([("main_menu", "say:诉讼费的事"), ("kb_clarify:", "2"), ("kb_follow_up", "1")]), monkeypatch,
         voice_cache=cache)
    assert len(cache) == 5 and cache.bytes == 8_000
    walk(prompts, Caller([("main_menu", "say:诉讼费的事"), ("kb_clarify:", "1"), ("kb_follow_up", "1")]), monkeypatch,
         voice_cache=cache)
    assert voice.count("诉讼费在结案后退还。") == 1 and len(voice) == 6  # the list from it, F101's answer fetched
    cache.put("另一个回答。", 8000, bytes(4_000))
    assert cache.get("诉讼费在结案后退还。", 8000) is None and cache.bytes <= 10_000
    assert cache.get("另一个回答。", 8000) is not None


def test_not_understood_at_the_main_menu_asks_again(prompts, monkeypatch):
    Hub(monkeypatch, {})  # the matcher hands everything off
    _, events = walk(prompts, Caller([("main_menu", "say:今天天气怎么样"), ("main_menu", "6"),
                                      ("suggestion_message_prompt", "#")]), monkeypatch)
    assert path(events)[:3] == ["welcome", "main", "suggestion"]
    names = played(events)
    assert names.index("speech_not_understood") < len(names) - names[::-1].index("main_menu") - 1
    assert of(events, MenuSpeech)[0]["outcome"] == "not_understood"
    # three times not understood: the retries run out, as with wrong keys
    _, events = walk(prompts, Caller([("main_menu", "say:啊"), ("main_menu", "say:嗯嗯"), ("main_menu", "say:哦")]),
                     monkeypatch)
    assert path(events)[:3] == ["welcome", "main", "operator"]
    assert played(events).count("speech_not_understood") == 2 and "too_many_retries" in played(events)


def test_clarify_between_two_options(prompts, monkeypatch, voice):
    Hub(monkeypatch, {"我要问问案子": {
        "decision": "clarify", "offered": ["option:1", "option:4"], "reason": "two options close",
        "choices": [{"id": "option:1", "title": "案件查询"}, {"id": "option:4", "title": "催办"}]}})
    _, events = walk(prompts, Caller([("main_menu", "say:我要问问案子"), ("kb_clarify:", "say:第二个")]), monkeypatch)
    assert path(events)[:3] == ["welcome", "main", "urge"]
    assert "menu_clarify_lead" in played(events) and "kb_clarify:option:1,option:4" in played(events)
    assert voice[:2] == ["一，案件查询；", "二，催办；"]
    assert of(events, KbClarified) == [{"node": "main", "offered": ["option:1", "option:4"], "picked": "option:4",
                                        "method": "speech", "text": "第二个"}]


# ------------------------------------------------------------------------------------------ the clarify list


def consult(question: str, *then: tuple[str, str]) -> Caller:
    return Caller([("main_menu", "2"), ("consult_intro", f"say:{question}"), *then])


@pytest.mark.parametrize("reply", ["say:第二个", "say:二", "say:第2个", "say:退费那个", "2"])
def test_clarify_list_said_or_keyed_plays_that_answer(prompts, monkeypatch, voice, reply):
    hub = Hub(monkeypatch, {"诉讼费的问题": clarify_reply()})
    outcome, events = walk(prompts, consult("诉讼费的问题", ("kb_clarify:", reply), ("kb_follow_up", "1")),
                           monkeypatch)
    assert outcome.cause == "answered_by_kb"
    names = played(events)
    i = names.index("kb_clarify_lead")
    assert names[i + 1:i + 4] == ["kb_clarify:F101,F102,F103", "kb_answer:F102", "kb_follow_up"]
    assert voice[:3] == ["一，诉讼费怎么交；", "二，诉讼费退费；", "三，诉讼费减免；"]  # rendered ahead in service
    assert voice[3] == "诉讼费退费请在结案后申请。"
    picked = of(events, KbClarified)[0]
    assert picked["picked"] == "F102" and picked["method"] == ("keypad" if reply == "2" else "speech")
    assert of(events, KbDecided)[0]["decision"] == "clarify"
    assert of(events, KbDecided)[0]["offered"] == ["F101", "F102", "F103"]
    assert hub.asked[0][1] is None and hub.asked[0][2] == 0.87  # menu 2 asks the entries alone, with the confidence


def test_a_key_during_the_lead_stops_the_list(prompts, monkeypatch):
    Hub(monkeypatch, {"诉讼费的问题": clarify_reply()})
    caller = consult("诉讼费的问题", ("kb_clarify_lead", "3"), ("kb_follow_up", "1"))
    outcome, events = walk(prompts, caller, monkeypatch)
    assert "kb_clarify_lead" in caller.interrupted and not any(n.startswith("kb_clarify:") for n in caller.played)
    assert "kb_answer:F103" in played(events) and outcome.cause == "answered_by_kb"


@pytest.mark.parametrize("reply", ["say:都不是", "0", "say:今天星期几", None])
def test_none_of_them_goes_to_staff_with_what_was_said(prompts, monkeypatch, reply):
    Hub(monkeypatch, {"诉讼费的问题": clarify_reply(("F101", "F102"))})
    script = [("kb_clarify:", reply)] if reply else []
    _, events = walk(prompts, consult("诉讼费的问题", *script), monkeypatch)
    assert path(events)[-1] == "consult_staff" and not any(p.startswith("kb_answer") for p in played(events))
    clarified = of(events, KbClarified)
    assert clarified[0]["picked"] is None and clarified[0]["offered"] == ["F101", "F102"]
    assert clarified[0]["method"] == {None: "none", "0": "keypad"}.get(reply, "speech")
    finals = [e["text"] for e in of(events, SpeechHeard) if e["kind"] == "final"]
    assert finals[0] == "诉讼费的问题" and (reply is None or not reply.startswith("say:") or finals[1] == reply[4:])
    assert len([p for p in played(events) if p == "kb_clarify_lead"]) == 1  # asked once only


def test_a_misheard_reply_is_read_from_the_recognizers_next_hypotheses(prompts, monkeypatch):
    """whisper heard "我要第二个" once as "我要调个" on a real call: the list and the confirm ask for the n-best, and
    the first hypothesis that reads as a choice counts."""
    Hub(monkeypatch, {"诉讼费的问题": clarify_reply(("F101", "F102"))})
    heard = "say:我要调个|我要掉一个|我要第二个|我要第一个"  # the best first, then its next hypotheses
    caller = consult("诉讼费的问题", ("kb_clarify:", heard), ("kb_follow_up", "1"))
    outcome, events = walk(prompts, caller, monkeypatch)
    assert of(events, KbClarified)[0]["picked"] == "F102" and "kb_answer:F102" in played(events)
    assert of(events, KbClarified)[0]["text"] == "我要调个"  # what was heard first is what the record shows
    # nothing in any hypothesis reads as a choice: none of them, as before
    _, events = walk(prompts, consult("诉讼费的问题", ("kb_clarify:", "say:今天星期几|今天星期一")), monkeypatch)
    assert of(events, KbClarified)[0]["picked"] is None and path(events)[-1] == "consult_staff"
    confirm = {**clarify_reply(("F101",)), "decision": "confirm", "question_text": "诉讼费怎么退？"}
    Hub(monkeypatch, {"退钱": confirm})
    outcome, events = walk(prompts, consult("退钱", ("kb_confirm:F101", "say:市的|是的"), ("kb_follow_up", "1")),
                           monkeypatch)
    assert of(events, KbClarified)[0]["picked"] == "F101" and outcome.cause == "answered_by_kb"


def test_a_spoken_yes_or_no_answers_the_confirm(prompts, monkeypatch, voice):
    confirm = {"decision": "confirm", "faq_id": "F012", "score": 0.7, "offered": ["F012"],
               "question_text": "诉讼费怎么退？", "answer_text": "诉讼费在结案后退还。",
               "choices": [{"id": "F012", "title": "诉讼费退费", "answer_text": "诉讼费在结案后退还。"}]}
    Hub(monkeypatch, {"退钱": confirm})
    outcome, events = walk(prompts, consult("退钱", ("kb_confirm:F012", "say:是的"), ("kb_follow_up", "1")),
                           monkeypatch)
    assert outcome.cause == "answered_by_kb" and "kb_answer:F012" in played(events)
    assert voice[0] == "您是想问：诉讼费怎么退吗？是请按1，不是请按2。"
    assert of(events, KbClarified)[0] == {"node": "consult", "offered": ["F012"], "picked": "F012",
                                          "method": "speech", "text": "是的"}
    _, events = walk(prompts, consult("退钱", ("kb_confirm:F012", "say:不是")), monkeypatch)
    assert path(events)[-1] == "consult_staff" and of(events, KbClarified)[0]["picked"] is None
    # an older hub (no offered, no choices) still confirms its entry; 1 pressed = yes
    old = {k: v for k, v in confirm.items() if k not in ("offered", "choices")}
    Hub(monkeypatch, {"退钱": old})
    outcome, events = walk(prompts, consult("退钱", ("kb_confirm:F012", "1"), ("kb_follow_up", "1")), monkeypatch)
    assert outcome.cause == "answered_by_kb"


def test_a_question_with_a_clarify_at_the_main_menu_and_none_of_them(prompts, monkeypatch):
    Hub(monkeypatch, {"诉讼费的问题": clarify_reply()})
    _, events = walk(prompts, Caller([("main_menu", "say:诉讼费的问题"), ("kb_clarify:", "say:都不是")]), monkeypatch)
    assert path(events) == ["welcome", "main", "consult_staff"]
    assert of(events, MenuSpeech)[0]["outcome"] == "question"
    assert of(events, KbClarified)[0]["picked"] is None


# ------------------------------------------------------------------------------------------ menus and phrases


def test_menu_yaml_plain_and_rich_choices_and_bad_ones(prompts):
    base = "version: 1\nstart: m\nnodes:\n  m:\n    - gather: {prompt: main_menu, %s}\n  a:\n    - hangup: {}\n"
    menu = parse_menu(base % 'choices: {"1": a, "2": {node: a, title: 甲, phrases: [要甲]}}, speech: true',
                      "t", prompts)
    gather = menu.nodes["m"][0]
    assert gather.target("1") == gather.target("2") == "a" and gather.speech
    for bad, why in [('choices: {"1": a}, kb_handoff: a', "kb_handoff needs speech"),
                     ('store: x, speech: true', "for menus"),
                     ('choices: {"1": {node: a, phrases: [""]}}', "1-50 characters"),
                     ('choices: {"1": {node: a, title: 一二三四五六七八九十一二三四五六七}}', "16"),
                     ('choices: {"1": {node: nowhere}}', "nowhere")]:
        with pytest.raises(MenuError, match=why):
            parse_menu(base % bad, "t", prompts)


@pytest.mark.parametrize("text,titles,expected", [
    ("第二个", 3, 2), ("二", 3, 2), ("第2个。", 3, 2), ("嗯，第一个吧", 3, 1), ("第三個", 3, 3), ("两个", 3, 2),
    ("退费那个", 3, 2), ("诉讼费减免", 3, 3), ("都不是", 3, 0), ("都不对", 2, 0), ("转人工", 3, 0), ("零", 3, 0),
    ("我先第二个。", 3, 2), ("第二个版", 3, 2), ("写第2个", 3, 2), ("都不许", 3, 0),
    ("第三个", 2, None), ("我想问第二个案子开庭以后的第三个问题", 3, None),
    ("诉讼费", 3, None), ("今天星期几", 3, None), ("", 3, None),
])
def test_reading_a_spoken_pick(text, titles, expected):
    from ivr.kb_phrases import pick

    assert pick(text, ["诉讼费怎么交", "诉讼费退费", "诉讼费减免"][:titles]) == expected


@pytest.mark.parametrize("text,expected", [("是", True), ("是的。", True), ("对", True), ("对的", True), ("没错", True),
                                           ("不是", False), ("不对", False), ("不是这个", False), ("一", True),
                                           ("二", False), ("什么", None), ("", None)])
def test_reading_a_spoken_yes_or_no(text, expected):
    from ivr.kb_phrases import yes_no

    assert yes_no(text) is expected


def test_prerender_covers_answers_confirms_and_list_items():
    from types import SimpleNamespace

    from hotline.speech_main import dialogue_texts, menu_titles

    entries = [SimpleNamespace(answer="答{court}", question="诉讼费怎么交？", title=None),
               SimpleNamespace(answer="答二", question="诉讼费退费需要什么材料", title="诉讼费退费")]
    titles = menu_titles(BUNDLED_MENU)
    assert titles[:2] == ["案件查询", "诉讼咨询"] and len(titles) == 8
    texts = dialogue_texts(entries, titles[:1], lambda t: t.replace("{court}", "某法院"))
    assert texts[:2] == ["答某法院", "答二"]
    assert "您是想问：诉讼费怎么交吗？是请按1，不是请按2。" in texts
    assert "您是要办理：案件查询吗？是请按1，不是请按2。" in texts
    for t in ("一，诉讼费怎么交；", "三，诉讼费怎么交；", "二，诉讼费退费；", "三，案件查询；"):
        assert t in texts
    assert "一，诉讼费退费需要什么材料；" not in texts  # the title, not the question, when there is one
