"""The short dialogue around a knowledge-base answer: confirm or clarify when unsure, speak, ask if it settled it.

    hub decision ─ answer ─────────────────────────────────────────────▶ the answer ─▶ "解决了请按1，转人工请按0"
                 ─ confirm ─ "您是想问：…吗？是请按1，不是请按2" (是/对/不是 said works too) ─ yes ─▶ the answer
                 ─ clarify ─ "您是想问：一，…；二，…；三，…？请说序号或按键" ─ 1-3 pressed or said ("第二个",
                             "退费那个") ─▶ that answer;  0 / "都不是" / silence / unclear ─▶ staff
                 ─ handoff (or no voice, no hub) ─▶ staff

At most one question is asked back; after it the caller has an answer or a person. The list starts at once: its
lead is a rendered prompt, the items are sentences the speech service rendered ahead ("二，诉讼费退费；"), joined
while the lead plays. Items may be menu options ("option:<key>") when the question came from a menu that listens;
picking one returns that option to the menu.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import structlog

from ivr.audio import Clip
from ivr.contract import KbClarified, KbDecided, PromptPlayed
from ivr.flow.context import FlowContext
from ivr.flow.turn import OpenTurn
from ivr.hearing import Reply, hear_or_key
from ivr.hub_api import MAX_QUERY, KbChoice, KbMatch
from ivr.hub_client import KbUnavailable, kb_match
from ivr.kb_phrases import (
    CLARIFY_LEAD,
    CLARIFY_TAIL,
    FOLLOW_UP_PROMPT,
    MENU_CLARIFY_LEAD,
    confirm_sentence,
    list_fragment,
    option_confirm_sentence,
    pick,
    yes_no,
)
from ivr.keypad import read_key
from ivr.phrases import render

log = structlog.get_logger(__name__)

ANSWER_TIMEOUT_S = 20.0  # a long answer not yet in the voice's cache renders in several seconds on a busy host

ITEM_GAP_S = 0.12  # between the rendered list items (each is trimmed of its edge silence)
_T = TypeVar("_T")
#: n-best: whisper-base hears a short reply through the phone chain a little differently from call to call
#: ("我要第二个" once as "我要调个"); when the best hypothesis is not understood, the next ones are read
REPLY_ALTERNATIVES = 4


@dataclass(frozen=True)
class DialogResult:
    outcome: Literal["settled", "handoff", "option", "resumed"]  # resumed: the caller went on over an early reply
    option: str | None = None  # the menu option's key, for "option"


def decided(ctx: FlowContext, m: KbMatch, question: str) -> None:
    ctx.emit(KbDecided, node=ctx.node, decision=m.decision, faq_id=m.faq_id, score=m.score, margin=m.margin,
             reason=m.reason[:200], query=question[:MAX_QUERY], offered=m.offered_ids()[:3])


@dataclass(frozen=True)
class AnswerOptions:
    """One question for the knowledge base (the ``kb_answer`` verb's arguments)."""

    question: str = "{question}"  # a template of call variables: the caller's words, usually from a listen verb
    key_timeout_s: float = 6.0
    listen: bool = True  # spoken replies to a confirm or a list, when the speech service is there


def answers_outright(ctx: FlowContext) -> Callable[[str, float | None], Awaitable[KbMatch | None]]:
    """For ``listen`` with ``quick_answer``: the hub's decision on the recognizer's speculative text when the
    dialogue can speak it at once — an answer, a "您是想问……吗" confirm or a list (the turn then ends there) —
    else None: a handoff waits for the recognizer's endpoint, whose final may say more. Any decision is kept in
    ``ctx.kb_prefetch``: kb_answer uses it when the final has the same text and confidence."""

    async def decide(text: str, confidence: float | None) -> KbMatch | None:
        hub, token = ctx.services.hub_url, ctx.services.hub_token
        if not hub or not token or not ctx.services.speech_url:
            return None
        try:
            m = await kb_match(hub, token, text, asr_confidence=confidence)
        except KbUnavailable:
            return None
        # kept for kb_answer: the final usually has this very text (the speculative decode is the final)
        ctx.kb_prefetch = (text, f"{confidence:.3f}" if confidence is not None else None, m)
        if m.decision == "answer":
            return m if m.option is None and m.faq_id and m.answer_text else None
        return m if m.decision in ("confirm", "clarify") else None

    return decide


async def answer_dialog(ctx: FlowContext, options: AnswerOptions) -> str:
    """'settled' when the caller confirmed the answer helped, else 'handoff'."""
    question = ctx.expand(options.question).strip()
    turn, ctx.open_turn = ctx.open_turn, None
    if turn is not None and (turn.text != question or turn.match is None):
        turn.close()
        turn = None
    try:
        hub, token, speech = ctx.services.hub_url, ctx.services.hub_token, ctx.services.speech_url
        if not question or not hub or not token or not speech:
            ctx.emit(KbDecided, node=ctx.node, decision="handoff", reason="no question or no hub/voice",
                     query=question[:MAX_QUERY])
            return "handoff"
        confidence = ctx.vars.get(f"{options.question.strip('{}')}_confidence")
        if ctx.early_deciding is not None:  # the decision on the speculative text, asked before the final came
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await ctx.early_deciding  # it leaves the decision in ctx.kb_prefetch
            ctx.early_deciding = None
        pre, ctx.kb_prefetch = ctx.kb_prefetch, None
        m = turn.match if turn is not None else pre[2] if pre is not None and pre[:2] == (question, confidence) \
            else await _match(ctx, question, confidence)
        if m is None:
            return "handoff"
        decided(ctx, m, question)
        result = await converse(ctx, m, key_timeout_s=options.key_timeout_s, listen=options.listen, turn=turn)
        if result.outcome == "resumed" and turn is not None:
            # the caller went on over the early answer: the whole utterance is the question
            heard = await turn.rest
            if heard is None or heard.kind != "final" or not heard.text.strip():
                return "handoff"
            question = heard.text.strip()
            ctx.vars[options.question.strip("{}")] = question
            m = await _match(ctx, question, f"{heard.confidence:.3f}" if heard.confidence is not None else None)
            if m is None:
                return "handoff"
            decided(ctx, m, question)
            result = await converse(ctx, m, key_timeout_s=options.key_timeout_s, listen=options.listen)
        return "settled" if result.outcome == "settled" else "handoff"
    finally:
        if turn is not None:
            turn.close()


async def _match(ctx: FlowContext, question: str, confidence: str | None) -> KbMatch | None:
    assert ctx.services.hub_url and ctx.services.hub_token
    try:
        return await kb_match(ctx.services.hub_url, ctx.services.hub_token, question,
                              asr_confidence=float(confidence) if confidence else None)
    except KbUnavailable as e:
        log.warning("kb_unavailable", call_id=ctx.channel.call_id, error=str(e))
        ctx.emit(KbDecided, node=ctx.node, decision="handoff", reason="kb_unavailable", query=question[:MAX_QUERY])
        return None


async def converse(ctx: FlowContext, m: KbMatch, *, key_timeout_s: float = 6.0, listen: bool = True,
                   turn: OpenTurn | None = None) -> DialogResult:
    """Everything after the hub's decision ``m``; the caller's keys from before are dropped. ``turn``: the question's
    turn was ended early (ivr/flow/turn.py); the caller going on stops the answer ("resumed")."""
    ctx.channel.flush_digits()
    if m.decision == "answer":
        if m.option is not None:
            return DialogResult("option", m.option)
        return await _answer(ctx, m.faq_id, m.answer_text, key_timeout_s, turn)
    if m.decision == "confirm":
        return await _confirm(ctx, m, key_timeout_s, listen, turn)
    if m.decision == "clarify":
        return await _clarify(ctx, m, key_timeout_s, listen, turn)
    return DialogResult("handoff")


async def _answer(ctx: FlowContext, faq_id: str | None, text: str | None, key_timeout_s: float,
                  turn: OpenTurn | None = None) -> DialogResult:
    # answers are rendered ahead by the speech service; one edited seconds ago may still be rendering there
    clip = await render(ctx, text or "", f"kb_answer:{faq_id}", timeout=ANSWER_TIMEOUT_S, keep=True)
    if clip is None:
        return DialogResult("handoff")
    if turn is not None and turn.resumed.is_set():  # the caller went on before the answer began
        return DialogResult("resumed")
    await ctx.play_clip(clip.prompt_start(), True, PromptPlayed, clip.name)
    if turn is not None and turn.resumed.is_set():  # ... or during its first instants: it was stopped
        return DialogResult("resumed")
    await ctx.play(FOLLOW_UP_PROMPT, barge_in=True)
    key = await read_key(ctx, key_timeout_s)
    return DialogResult("settled" if key == "1" else "handoff")


def _choices(m: KbMatch) -> list[KbChoice]:
    """The offered items with titles, in spoken order (an older hub's confirm: its own entry)."""
    by_id = {c.id: c for c in m.choices}
    out = [by_id[i] for i in m.offered_ids() if i in by_id]
    if not out and m.decision == "confirm" and m.faq_id:
        out = [KbChoice(id=m.faq_id, title=m.question_text or "", answer_text=m.answer_text)]
    return out


async def _picked(ctx: FlowContext, item: KbChoice, m: KbMatch, key_timeout_s: float) -> DialogResult:
    if item.option is not None:
        return DialogResult("option", item.option)
    text = item.answer_text or (m.answer_text if item.id == m.faq_id else None)
    return await _answer(ctx, item.id, text, key_timeout_s)


def _first_read(reply: Reply, read: Callable[[str], _T | None]) -> _T | None:
    """``read`` of the first of the reply's hypotheses it understands (None for a key or no reply)."""
    for text in reply.texts():
        if (got := read(text)) is not None:
            return got
    return None


def _clarified(ctx: FlowContext, offered: list[KbChoice], picked: KbChoice | None, reply: Reply) -> None:
    method = {"key": "keypad", "speech": "speech"}.get(reply.kind, "none")
    ctx.emit(KbClarified, node=ctx.node, offered=[c.id for c in offered], picked=picked.id if picked else None,
             method=method, text=reply.text[:500])


async def _confirm(ctx: FlowContext, m: KbMatch, key_timeout_s: float, listen: bool,
                   turn: OpenTurn | None = None) -> DialogResult:
    items = _choices(m)
    if not items:
        return DialogResult("handoff")
    item = items[0]
    text = option_confirm_sentence(item.title) if item.option is not None else \
        confirm_sentence(m.question_text if item.id == m.faq_id and m.question_text else item.title)
    clip = await render(ctx, text, f"kb_confirm:{item.id}", keep=True)
    if clip is None:
        return DialogResult("handoff")
    reply = await hear_or_key(ctx, [clip.prompt_start()], listen=listen, no_input_s=key_timeout_s, max_utterance_s=5.0,
                              alternatives=REPLY_ALTERNATIVES, turn=turn)
    if reply.kind == "resumed":
        return DialogResult("resumed")
    yes = reply.key == "1" if reply.kind == "key" else _first_read(reply, yes_no)
    _clarified(ctx, items[:1], item if yes else None, reply)
    return await _picked(ctx, item, m, key_timeout_s) if yes else DialogResult("handoff")


async def _list_clip(ctx: FlowContext, items: list[KbChoice]) -> Clip | None:
    """"一，<title>；二，<title>；…" then "请说序号或按键。" as one clip (items rendered ahead, fetched at once)."""
    parts = await asyncio.gather(*(render(ctx, list_fragment(i + 1, c.title), c.id, keep=True)
                                   for i, c in enumerate(items)))
    if any(p is None for p in parts):
        return None
    gap = ctx.prompts.silence(ITEM_GAP_S).pcm
    pcm = gap.join(p.pcm for p in parts if p is not None) + gap + ctx.prompts.get(CLARIFY_TAIL).pcm
    return Clip("kb_clarify:" + ",".join(c.id for c in items), pcm, ctx.prompts.rate)


async def _clarify(ctx: FlowContext, m: KbMatch, key_timeout_s: float, listen: bool,
                   turn: OpenTurn | None = None) -> DialogResult:
    items = _choices(m)[:3]
    if len(items) < 2 or any(not c.title.strip() for c in items):
        log.warning("kb_clarify_without_titles", call_id=ctx.channel.call_id, offered=m.offered_ids())
        return DialogResult("handoff")
    lead = MENU_CLARIFY_LEAD if all(c.option is not None for c in items) else CLARIFY_LEAD
    rest = asyncio.create_task(_list_clip(ctx, items))
    reply = await hear_or_key(ctx, [ctx.prompts.get(lead).prompt_start(), rest], listen=listen,
                              no_input_s=key_timeout_s, max_utterance_s=6.0, alternatives=REPLY_ALTERNATIVES, turn=turn)
    if not rest.done():
        rest.cancel()  # the caller answered before the list was rendered
    if reply.kind == "resumed":
        return DialogResult("resumed")
    if not rest.cancelled() and rest.result() is None and reply.kind == "none":
        return DialogResult("handoff")  # the voice could not speak the list
    n: int | None = None
    if reply.kind == "key":
        n = int(reply.key) if reply.key.isdigit() and int(reply.key) <= len(items) else None
    elif reply.kind == "speech":
        n = _first_read(reply, lambda t: pick(t, [c.title for c in items]))
    item = items[n - 1] if n else None
    _clarified(ctx, items, item, reply)
    return await _picked(ctx, item, m, key_timeout_s) if item is not None else DialogResult("handoff")
