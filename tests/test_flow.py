"""The call-flow engine on the bundled 12368 menu, driven through a scripted channel."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest

from ivr.audio import Clip, PromptLibrary
from ivr.contract import DigitsReceived, HandoffRequested, MenuEntered, PromptPlayed
from ivr.flow.channel import PlayResult
from ivr.flow.context import FlowContext
from ivr.flow.engine import run_flow
from ivr.flow.menu import MenuError, load_menu, parse_menu
from ivr.flow.services import CallServices
from ivr.settings import BUNDLED_MENU, BUNDLED_PROMPTS
from tests.fakes import FakeChannel


class ScriptedChannel(FakeChannel):
    """A caller who presses keys when given prompts start: [("main_menu", "1"), ...] in order.

    Prompts finish at once unless a pressed digit interrupts them (barge-in).
    """

    call_id = "test"

    def __init__(self, script: list[tuple[str, str]]):
        super().__init__()
        self.script = deque(script)

    async def play(self, clip: Clip, barge_in: bool) -> PlayResult:
        if self.script and self.script[0][0] == clip.name:
            self.pending.extend(self.script.popleft()[1])
        if barge_in and self.pending:
            return PlayResult(0, True)
        return PlayResult(clip.duration_ms, False)


@pytest.fixture(scope="module")
def prompts() -> PromptLibrary:
    return PromptLibrary(BUNDLED_PROMPTS, 8000)


async def walk(prompts: PromptLibrary, script: list[tuple[str, str]], menu_path: Path = BUNDLED_MENU):
    menu = load_menu(menu_path, prompts)
    events: list[tuple[type, dict]] = []
    ctx = FlowContext(channel=ScriptedChannel(script), prompts=prompts,
                      emit=lambda cls, **kw: events.append((cls, kw)))
    outcome = await run_flow(menu, ctx)
    path = [kw["node"] for cls, kw in events if cls is MenuEntered]
    played = [kw["prompt"] for cls, kw in events if cls is PromptPlayed]
    keys = "".join(kw["digits"] for cls, kw in events if cls is DigitsReceived)
    handoffs = [kw for cls, kw in events if cls is HandoffRequested]
    return outcome, path, played, keys, handoffs, ctx


async def test_case_query_without_the_hub_apologises_and_offers_staff(prompts):
    """Menus 1, 3 and 4 need the hub's case desk (tests/test_case_flow.py drives them with one)."""
    outcome, path, played, keys, handoffs, _ = await walk(prompts, [
        ("main_menu", "1"), ("case_operator_offer", "0")])
    assert path == ["welcome", "main", "case_query", "case_unavailable", "case_staff"]
    assert played[played.index("case_query_intro") + 1:] == ["case_unavailable", "case_operator_offer", "handoff",
                                                             "handoff_unavailable"]
    assert keys == "10"
    assert handoffs == [{"node": "case_staff", "reason": "case_query", "category": "query"}]
    assert outcome.cause == "handoff_unavailable"


async def test_star_repeats_the_main_menu(prompts):
    _, path, played, _, _, _ = await walk(prompts, [("main_menu", "*"), ("main_menu", "0")])
    assert path == ["welcome", "main", "main", "operator"]
    assert played.count("main_menu") == 2


async def test_invalid_choice_then_operator(prompts):
    _, path, played, _, handoffs, _ = await walk(prompts, [("main_menu", "9"), ("main_menu", "0")])
    assert "invalid_input" in played
    assert path[-1] == "operator"
    assert handoffs[-1]["reason"] == "caller_request"


async def test_silence_ends_in_handoff_after_retries(prompts):
    outcome, path, played, keys, handoffs, _ = await walk(prompts, [])
    assert keys == ""
    assert played.count("no_input") == 2 and played.count("main_menu") == 3
    assert played.index("too_many_retries") > played.index("no_input")
    assert path[-1] == "operator" and handoffs
    assert outcome.cause == "handoff_unavailable"


async def test_consult_without_a_speech_service_goes_to_staff(prompts):
    _, path, _, _, handoffs, _ = await walk(prompts, [("main_menu", "2")])
    assert path == ["welcome", "main", "consult", "operator"]
    assert handoffs[0]["reason"] == "caller_request"


@pytest.mark.parametrize("choice,script,nodes,last_prompt", [
    ("3", [("case_operator_offer", "*"), ("main_menu", "0")], ["contact_judge", "case_unavailable", "main",
                                                                "operator"], "handoff_unavailable"),
    ("4", [("case_operator_offer", "")], ["urge", "case_unavailable"], "goodbye"),
    ("5", [("complaint_recorded", "1")], ["complaint", "complaint_staff"], "handoff_unavailable"),
    ("6", [], ["suggestion"], "suggestion_goodbye"),
])
async def test_every_main_choice_reaches_its_service(prompts, choice, script, nodes, last_prompt):
    _, path, played, _, _, _ = await walk(prompts, [("main_menu", choice), *script])
    assert path == ["welcome", "main", *nodes]
    assert played[-1] == last_prompt


def _menu_text() -> str:
    return BUNDLED_MENU.read_text(encoding="utf-8")


def test_invalid_menus_name_file_line_and_reason(prompts):
    text = _menu_text().replace("node: contact_judge,", "node: contact_judges,")
    with pytest.raises(MenuError) as e:
        parse_menu(text, "menu.yaml", prompts)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "contact_judges" in ln)
    assert any("contact_judges" in p for p in e.value.problems)
    assert str(e.value).startswith("menu.yaml:")

    bad_verb = _menu_text().replace("- play: welcome", "- plya: welcome")
    with pytest.raises(MenuError) as e:
        parse_menu(bad_verb, "menu.yaml", prompts)
    line = next(i for i, ln in enumerate(bad_verb.splitlines(), 1) if "plya" in ln)
    assert f"menu.yaml:{line}:" in str(e.value) and "unknown verb 'plya'" in str(e.value)

    bad_arg = _menu_text().replace("timeout: 6", "timeout: -6")
    with pytest.raises(MenuError) as e:
        parse_menu(bad_arg, "menu.yaml", prompts)
    line = next(i for i, ln in enumerate(bad_arg.splitlines(), 1) if "timeout: -6" in ln)
    assert f"menu.yaml:{line}: nodes.main.0.gather.timeout:" in str(e.value)

    missing_prompt = _menu_text().replace("- play: welcome", "- play: no_such_prompt")
    with pytest.raises(MenuError) as e:
        parse_menu(missing_prompt, "menu.yaml", prompts)
    assert "prompt 'no_such_prompt' not found" in str(e.value)

    with pytest.raises(MenuError) as e:
        parse_menu("start: a\nnodes:\n  a: [ {play: x\n", "broken.yaml", prompts)
    assert str(e.value).startswith("broken.yaml:") and "not valid YAML" in str(e.value)


async def test_a_menu_loop_without_progress_ends(prompts, tmp_path):
    f = tmp_path / "loop.yaml"
    f.write_text("start: a\nnodes:\n  a: [{goto: b}]\n  b: [{goto: a}]\n", encoding="utf-8")
    outcome, path, *_ = await walk(prompts, [], f)
    assert outcome.cause == "flow_loop_limit" and len(path) == 200


async def test_the_kb_decision_carries_the_callers_question(prompts, monkeypatch):
    """Every kb_decided event names what was asked (the hub lists unanswered questions from it)."""
    import ivr.kb_dialog as kb_dialog
    from ivr.contract import KbDecided
    from ivr.hub_client import KbMatch, KbUnavailable
    from ivr.verbs.kb_answer import KbAnswer

    async def no_answer(hub, token, text, **_):
        return KbMatch(decision="handoff", faq_id=None, score=0.2, margin=0.0, reason="out_of_scope: x")

    async def hub_down(hub, token, text, **_):
        raise KbUnavailable("hub unreachable")

    verb = KbAnswer(on_handoff="consult_staff")
    services = {"hub_url": "http://127.0.0.1:1", "hub_token": "t", "speech_url": "ws://127.0.0.1:1"}
    for fake, extra, reason in [(no_answer, services, "out_of_scope: x"), (hub_down, services, "kb_unavailable"),
                                (no_answer, {}, "no question or no hub/voice")]:
        monkeypatch.setattr(kb_dialog, "kb_match", fake)
        events: list[tuple[type, dict]] = []
        ctx = FlowContext(channel=ScriptedChannel([]), prompts=prompts, node="consult",
                          services=CallServices(**extra),
                          emit=lambda cls, **kw: events.append((cls, kw)))  # noqa: B023
        ctx.vars["question"] = "社保卡丢了怎么补办"
        assert await kb_dialog.answer_dialog(ctx, verb) == "handoff"
        decided = [kw for cls, kw in events if cls is KbDecided]
        assert [(d["decision"], d["reason"], d["query"]) for d in decided] == [
            ("handoff", reason, "社保卡丢了怎么补办")]
        KbDecided(call_id="c", worker="w", **decided[0])  # the contract takes it


async def test_a_spoken_number_turn_without_a_recognizer_asks_for_keys(prompts):
    """``listen`` with ``expect: digits`` on a call the recognizer cannot hear (no speech service): the turn's prompt,
    then 请用电话按键输入, and the keyed number is stored; nothing keyed still goes to ``on_failure``."""
    from ivr.flow.outcomes import Goto
    from ivr.verbs.listen import Listen

    verb = Listen(prompt="no_speech", store="phone", expect="digits", digits_length=11, beep=False, retries=0,
                  on_failure="staff")
    assert "keys_instead" in verb.prompt_refs()
    channel = ScriptedChannel([("keys_instead", "13800138000")])
    events: list[tuple[type, dict]] = []
    ctx = FlowContext(channel=channel, prompts=prompts, node="phone", services=CallServices(),
                      emit=lambda cls, **kw: events.append((cls, kw)))
    assert await verb.run(ctx) is None and ctx.vars["phone"] == "13800138000"
    assert [kw["prompt"] for cls, kw in events if cls is PromptPlayed] == ["no_speech", "keys_instead"]
    assert "".join(kw["digits"] for cls, kw in events if cls is DigitsReceived) == "13800138000"

    silent = FlowContext(channel=ScriptedChannel([]), prompts=prompts, node="phone", services=CallServices(),
                         emit=lambda cls, **kw: None)
    outcome = await verb.run(silent)
    assert isinstance(outcome, Goto) and outcome.node == "staff" and "phone" not in silent.vars
