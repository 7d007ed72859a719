"""One round of listening: prompt (interruptible by speech or a key), then the caller's utterance."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import structlog

from ivr.contract import SpeechHeard
from ivr.speech_client import Heard, SpeechUnavailable, number_config, recognize

if TYPE_CHECKING:
    from ivr.flow.context import FlowContext
    from ivr.verbs.listen import Listen

log = structlog.get_logger(__name__)


_SAY_DIGIT = dict(zip("0123456789X", "零幺二三四五六七八九叉", strict=True))


def read_back(value: str, expect: str) -> str:
    """How the IVR reads a heard number back for confirmation: phone numbers digit by digit in groups
    (幺三八，零五七幺，零二四六), a case number as written with its digits read one by one."""
    if expect == "case_number":
        return "".join(_SAY_DIGIT.get(c, c) for c in value.strip("（）").replace("）", ""))
    said = [_SAY_DIGIT.get(c, c) for c in value]
    groups = [3, 4, 4] if len(said) == 11 else [len(said)]
    out, k = [], 0
    for g in groups:
        out.append("".join(said[k:k + g]))
        k += g
    return "，".join(out)


async def listen_once(ctx: FlowContext, verb: Listen, prompts: list[str]) -> Heard:
    channel = ctx.channel
    url = ctx.extra.get("speech_url")
    if not url or not hasattr(channel, "audio_chunks"):
        ctx.emit(SpeechHeard, node=ctx.node, kind="unavailable")
        return Heard("unavailable")
    config = {"priority": 0, "no_input_timeout_s": verb.no_input_timeout_s,
              "max_utterance_s": verb.max_utterance_s, "end_silence_ms": verb.end_silence_ms}
    expect = getattr(verb, "expect", None)  # a verb that asks for a number (phone, query code, case number)
    if expect:
        config.update(number_config(expect, getattr(verb, "digits_length", None)))
    prompt_clips = [ctx.prompts.get(p) for p in prompts] + ([ctx.prompts.get("beep")] if verb.beep else [])
    prompt_seconds = sum(c.duration_ms for c in prompt_clips) / 1000
    # the no-input clock starts when the prompt ends, so it runs through the prompt as well
    config["no_input_timeout_s"] = verb.no_input_timeout_s + prompt_seconds
    speaking = asyncio.Event()

    async def play_prompts() -> None:
        for clip in prompt_clips:
            if speaking.is_set():
                return
            result = await ctx.play_clip(clip, barge_in=True)
            if result.interrupted:
                return

    player = asyncio.create_task(play_prompts())
    final = Heard("no_input")
    last_partial = ""
    try:
        async for heard in recognize(url, channel.audio_chunks(), channel.rate, config):
            if heard.kind == "started":
                speaking.set()
                channel.stop_prompt()  # barge-in by voice
                ctx.emit(SpeechHeard, node=ctx.node, kind="started")
            elif heard.kind == "partial":
                if heard.text != last_partial:
                    last_partial = heard.text
                    ctx.emit(SpeechHeard, node=ctx.node, kind="partial", text=heard.text)
            else:
                final = heard
                ctx.emit(SpeechHeard, node=ctx.node, kind=heard.kind, text=heard.text,
                         confidence=heard.confidence, audio_s=heard.audio_s, latency_s=heard.latency_s)
    except SpeechUnavailable as e:
        log.warning("speech_unavailable", call_id=channel.call_id, error=str(e))
        ctx.emit(SpeechHeard, node=ctx.node, kind="unavailable")
        final = Heard("unavailable")
    finally:
        if not player.done():
            channel.stop_prompt()
        with contextlib.suppress(asyncio.CancelledError):
            await player
    return final
