"""One round of listening: prompt (interruptible by speech or a key), then the caller's utterance.

``hear_utterance`` is the one loop over the speech service's results (SpeechHeard events on the record, barge-in
by voice); ``listen_once`` (the ``listen`` verb, the 回访 rating) and ivr/hearing.py (keys and speech at once) use it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import structlog

from ivr.contract import SpeechHeard
from ivr.flow.context import FlowContext
from ivr.speech_client import Heard, SpeechUnavailable, number_config, recognize

log = structlog.get_logger(__name__)


#: after the no-input time and the longest utterance, how long the final may take (decoding, a queue) before the
#: turn is given up as if the service were down
LISTEN_GRACE_S = 20.0

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


@dataclass(frozen=True)
class ListenOptions:
    """How long to wait and listen for one utterance (the ``listen`` verb's timing)."""

    no_input_timeout_s: float = 6.0  # after the prompt
    max_utterance_s: float = 30.0
    end_silence_ms: int = 600
    beep: bool = True  # a short tone after the prompt: speak now
    expect: str | None = None  # a spoken number: "digits" or "case_number" (ivr.speech_client.number_config)
    digits_length: int | None = None


async def hear_utterance(ctx: FlowContext, url: str, config: dict[str, Any], speaking: asyncio.Event) -> Heard:
    """The caller's next utterance (SpeechHeard events on the record), or no_input / busy / unavailable.
    The start of speech sets ``speaking`` and stops the prompt (barge-in by voice)."""
    channel = ctx.channel
    # end to end: a service that takes the stream but never answers (a stuck decode queue) must not hold the call
    deadline = (float(config.get("no_input_timeout_s", 6.0)) + float(config.get("max_utterance_s", 30.0))
                + LISTEN_GRACE_S)
    try:
        async with asyncio.timeout(deadline):
            return await _hear(ctx, url, config, speaking)
    except TimeoutError:
        log.warning("speech_timeout", call_id=channel.call_id, after_s=round(deadline, 1))
        ctx.emit(SpeechHeard, node=ctx.node, kind="unavailable")
        return Heard("unavailable")


async def _hear(ctx: FlowContext, url: str, config: dict[str, Any], speaking: asyncio.Event) -> Heard:
    channel = ctx.channel
    last_partial = ""
    try:
        async for heard in recognize(url, channel.audio_chunks(), channel.rate, config):
            if heard.kind == "started":
                speaking.set()
                channel.stop_prompt()
                ctx.emit(SpeechHeard, node=ctx.node, kind="started")
            elif heard.kind == "partial":
                if heard.text != last_partial:
                    last_partial = heard.text
                    ctx.emit(SpeechHeard, node=ctx.node, kind="partial", text=heard.text)
            else:
                ctx.emit(SpeechHeard, node=ctx.node, kind=heard.kind, text=heard.text, confidence=heard.confidence,
                         audio_s=heard.audio_s, latency_s=heard.latency_s)
                return heard
    except SpeechUnavailable as e:
        log.warning("speech_unavailable", call_id=channel.call_id, error=str(e))
        ctx.emit(SpeechHeard, node=ctx.node, kind="unavailable")
        return Heard("unavailable")
    return Heard("no_input")


async def listen_once(ctx: FlowContext, options: ListenOptions, prompts: list[str]) -> Heard:
    channel = ctx.channel
    url = ctx.services.speech_url
    if not url or not channel.hears:
        ctx.emit(SpeechHeard, node=ctx.node, kind="unavailable")
        return Heard("unavailable")
    config: dict[str, Any] = {"priority": 0, "max_utterance_s": options.max_utterance_s,
                              "end_silence_ms": options.end_silence_ms}
    if options.expect:  # a number (phone, query code, case number)
        config.update(number_config(options.expect, options.digits_length))
    prompt_clips = [ctx.prompts.get(p) for p in prompts] + ([ctx.prompts.get("beep")] if options.beep else [])
    prompt_seconds = sum(c.duration_ms for c in prompt_clips) / 1000
    # the no-input clock starts when the prompt ends, so it runs through the prompt as well
    config["no_input_timeout_s"] = options.no_input_timeout_s + prompt_seconds
    speaking = asyncio.Event()

    async def play_prompts() -> None:
        for clip in prompt_clips:
            if speaking.is_set():
                return
            result = await ctx.play_clip(clip, barge_in=True)
            if result.interrupted:
                return

    player = asyncio.create_task(play_prompts())
    try:
        return await hear_utterance(ctx, url, config, speaking)
    finally:
        if not player.done():
            channel.stop_prompt()
        with contextlib.suppress(asyncio.CancelledError):
            await player
