"""What a caller said at a menu that listens (``gather`` with ``speech: true``), and where it leads.

    said ─ a whole-reply key ("二", "按2") or exactly an option's title/phrase ("转人工") ─▶ that option
         ─ the hub's matcher, given the menu's options (titles, phrases) beside the FAQ entries:
              option won (answer) ─▶ its node ("我要投诉" → complaint; "再听一遍" → the menu again)
              an entry: answer / confirm / clarify ─▶ the knowledge-base dialogue right here (ivr/kb_dialog.py),
                  as if asked in 诉讼咨询: settled → goodbye; not settled → ``kb_handoff`` (staff, with the question)
              options only, unsure ─▶ "您是要办理：一，案件查询；二，催办？请说序号或按键" ─▶ the option picked
              handoff / unsure / hub down ─▶ None: the menu says it did not understand and asks again (a retry)

Every reply is on the call record as a ``MenuSpeech`` event (text, outcome, option key and node, the matcher's
decision and reason), beside the recognizer's ``SpeechHeard`` final.
"""

from __future__ import annotations

from typing import Any, Protocol

import structlog

from ivr.contract import MenuSpeech
from ivr.flow.context import FlowContext
from ivr.flow.outcomes import Goto, Hangup, Outcome
from ivr.hub_api import MAX_QUERY, OPTION_PREFIX, KbMatch, MenuOption, MenuSpec
from ivr.hub_client import KbUnavailable, kb_match
from ivr.kb_dialog import converse, decided
from ivr.kb_phrases import normalize, spoken_number


class Gather(Protocol):
    """What this module needs of a listening menu (the gather verb): its choices and where each leads.
    A protocol, so that the verb can use this module without the two importing each other."""

    choices: Any

    def target(self, key: str) -> str: ...

    def outcome_for(self, key: str) -> Outcome: ...

log = structlog.get_logger(__name__)

NOT_UNDERSTOOD_PROMPT = "speech_not_understood"
QUESTION_VAR = "question"  # the question asked at a menu is kept for the nodes after it (as 诉讼咨询's listen does)


def menu_spec(node: str, gather: Gather) -> MenuSpec:
    """The menu's options as the matcher ranks them: every choice with a title or phrases."""
    options = []
    for key, choice in (gather.choices or {}).items():
        title = getattr(choice, "title", None)
        phrases = list(getattr(choice, "phrases", []) or [])
        if title or phrases:
            options.append(MenuOption(key=key, title=title or phrases[0], phrases=phrases))
    return MenuSpec(name=node, options=options)


def local_choice(text: str, gather: Gather) -> str | None:
    """A key the reply names outright: a spoken digit as the whole reply, or exactly an option's title or phrase."""
    n = spoken_number(text)
    if n is not None and str(n) in (gather.choices or {}):
        return str(n)
    said = normalize(text)
    for key, choice in (gather.choices or {}).items():
        names = [getattr(choice, "title", None), *(getattr(choice, "phrases", []) or [])]
        if any(name and normalize(name) == said for name in names):
            return key
    return None


def _record(ctx: FlowContext, gather: Gather, text: str, confidence: float | None, outcome: str,
            key: str | None = None, m: KbMatch | None = None) -> None:
    ctx.emit(MenuSpeech, node=ctx.node, text=text[:MAX_QUERY], confidence=confidence, outcome=outcome, option=key,
             target=gather.target(key) if key is not None else None, decision=m.decision if m else None,
             faq_id=m.faq_id if m else None, score=m.score if m else None, reason=(m.reason if m else "")[:200])


async def understand(ctx: FlowContext, gather: Gather, text: str, confidence: float | None) -> Outcome:
    """Where ``text`` said at ``gather``'s menu leads; None when it could not be placed (ask again)."""
    key = local_choice(text, gather)
    if key is not None:
        _record(ctx, gather, text, confidence, "option", key)
        return gather.outcome_for(key)
    hub, token = ctx.services.hub_url, ctx.services.hub_token
    if not hub or not token:
        _record(ctx, gather, text, confidence, "kb_unavailable")
        return None
    try:
        m = await kb_match(hub, token, text, menu=menu_spec(ctx.node, gather), asr_confidence=confidence)
    except KbUnavailable as e:
        log.warning("kb_unavailable", call_id=ctx.channel.call_id, error=str(e))
        _record(ctx, gather, text, confidence, "kb_unavailable")
        return None
    if m.decision == "answer" and m.option is not None and m.option in (gather.choices or {}):
        _record(ctx, gather, text, confidence, "option", m.option, m)
        return gather.outcome_for(m.option)
    offered = m.offered_ids()
    options_only = bool(offered) and all(i.startswith(OPTION_PREFIX) for i in offered)
    if m.decision == "handoff" or (not options_only and not gather.kb_handoff) or \
            (m.decision == "answer" and m.option is not None):  # an option this menu does not have
        _record(ctx, gather, text, confidence, "not_understood", m=m)
        return None
    _record(ctx, gather, text, confidence, "clarify" if options_only else "question", m=m)
    if not options_only:
        ctx.vars[QUESTION_VAR] = text
        decided(ctx, m, text)
    result = await converse(ctx, m)
    if result.outcome == "option" and result.option in (gather.choices or {}):
        _record(ctx, gather, text, confidence, "option", result.option, m)
        return gather.outcome_for(result.option)
    if result.outcome == "settled":
        if gather.goodbye_prompt:
            await ctx.play(gather.goodbye_prompt, barge_in=False)
        return Hangup("answered_by_kb")
    if options_only:
        return None  # 都不是 / silence after "您是要办理：…": the menu again
    return Goto(gather.kb_handoff)
