"""The short dialogue around a knowledge-base answer: confirm if unsure, speak, ask if it settled it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from ivr.audio import Clip
from ivr.contract import KbDecided
from ivr.hub_client import KbUnavailable, kb_match
from ivr.speech_client import SpeechUnavailable, synthesize

if TYPE_CHECKING:
    from ivr.flow.context import FlowContext
    from ivr.verbs.kb_answer import KbAnswer

log = structlog.get_logger(__name__)

FOLLOW_UP = "解决了请按1，转人工请按0。"
CONFIRM = "您是想问：{question}吗？是请按1，不是请按2。"
MAX_QUERY = 500  # the hub's match request takes at most this many characters


async def _say(ctx: FlowContext, text: str, name: str) -> None:
    from ivr.contract import PromptPlayed

    pcm = await synthesize(ctx.extra["speech_url"], text, ctx.prompts.rate)
    await ctx.play_clip(Clip(name, pcm, ctx.prompts.rate), True, PromptPlayed, name)


async def _key(ctx: FlowContext, verb: KbAnswer, allowed: str) -> str | None:
    from ivr.contract import DigitsReceived

    got = await ctx.channel.next_digit(verb.key_timeout_s)
    if got is None:
        return None
    ctx.emit(DigitsReceived, node=ctx.node, digits=got[0], method=got[1])
    return got[0] if got[0] in allowed else None


async def answer_dialog(ctx: FlowContext, verb: KbAnswer) -> str:
    """'settled' when the caller confirmed the answer helped, else 'handoff'."""
    question = ctx.expand(verb.question).strip()
    hub, token, speech = ctx.extra.get("hub_url"), ctx.extra.get("hub_token"), ctx.extra.get("speech_url")
    if not question or not hub or not token or not speech:
        ctx.emit(KbDecided, node=ctx.node, decision="handoff", reason="no question or no hub/voice",
                 query=question[:MAX_QUERY])
        return "handoff"
    try:
        m = await kb_match(hub, token, question)
    except KbUnavailable as e:
        log.warning("kb_unavailable", call_id=ctx.channel.call_id, error=str(e))
        ctx.emit(KbDecided, node=ctx.node, decision="handoff", reason="kb_unavailable", query=question[:MAX_QUERY])
        return "handoff"
    ctx.emit(KbDecided, node=ctx.node, decision=m["decision"], faq_id=m.get("faq_id"), score=m.get("score"),
             margin=m.get("margin"), reason=str(m.get("reason", ""))[:200], query=question[:MAX_QUERY])
    if m["decision"] == "handoff" or not m.get("answer_text"):
        return "handoff"
    try:
        ctx.channel.flush_digits()
        if m["decision"] == "confirm":
            await _say(ctx, CONFIRM.format(question=m.get("question_text") or ""), f"kb_confirm:{m['faq_id']}")
            if await _key(ctx, verb, "12") != "1":
                return "handoff"
        await _say(ctx, m["answer_text"], f"kb_answer:{m['faq_id']}")
        await _say(ctx, FOLLOW_UP, "kb_follow_up")
        return "settled" if await _key(ctx, verb, "10") == "1" else "handoff"
    except SpeechUnavailable as e:
        log.warning("voice_unavailable", call_id=ctx.channel.call_id, error=str(e))
        return "handoff"
