"""One round of listening: prompt (interruptible by speech or a key), then the caller's utterance.

``hear_utterance`` is the one loop over the speech service's results (SpeechHeard events on the record, barge-in
by voice); ``listen_once`` (the ``listen`` verb, the 回访 rating) and ivr/hearing.py (keys and speech at once) use it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from ivr.contract import SpeechHeard
from ivr.flow.context import FlowContext
from ivr.flow.turn import OpenTurn
from ivr.speech_client import Heard, SpeechLost, SpeechUnavailable, number_config, recognize
from ivr.speech_hosts import SpeechTarget, as_hosts

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


#: a prompt held at a speech onset goes on after this unless the speech became an utterance (min_speech_ms)
ONSET_HOLD_S = 0.5

#: given the speculative text and its confidence, what to end the turn on at once (e.g. the knowledge base's
#: decision when it answers outright), or None to wait for the recognizer's endpoint
Early = Callable[[str, float | None], Awaitable[object | None]]


def _heard_final(ctx: FlowContext, heard: Heard, early: bool = False) -> None:
    ctx.emit(SpeechHeard, node=ctx.node, kind=heard.kind, text=heard.text, confidence=heard.confidence,
             audio_s=heard.audio_s, latency_s=heard.latency_s, **({"early": True} if early else {}))


async def _rest_of_turn(ctx: FlowContext, stream: AsyncIterator[Heard], pending: asyncio.Future | None,
                        turn: OpenTurn) -> Heard | None:
    """A turn ended early: follow its recognition to the endpoint. The caller going on stops the reply (barge-in)
    and the final of the whole utterance is recorded; a final that only confirms the early text is not."""
    try:
        while True:
            try:
                heard = await (pending if pending is not None else anext(stream))
            except StopAsyncIteration:
                return None
            pending = None
            if heard.kind in ("resumed", "started"):
                turn.resumed.set()
                ctx.channel.stop_prompt()
                ctx.emit(SpeechHeard, node=ctx.node, kind="started")
            elif heard.kind in ("final", "no_input", "busy"):
                if heard.kind == "final" and (turn.resumed.is_set() or heard.text != turn.text):
                    _heard_final(ctx, heard)
                return heard
    except SpeechUnavailable:
        return None
    finally:
        with contextlib.suppress(Exception):
            await stream.aclose()  # type: ignore[attr-defined]


async def hear_utterance(ctx: FlowContext, url: SpeechTarget, config: dict[str, Any], speaking: asyncio.Event,
                         early: Early | None = None) -> Heard:
    """The caller's next utterance (SpeechHeard events on the record), or no_input / busy / unavailable.
    The start of speech sets ``speaking`` and stops the prompt (barge-in by voice); its onset (~60 ms of speech)
    already holds the prompt silent, which goes on if no utterance follows within ``ONSET_HOLD_S``.

    With ``early``, the speculative text (after ~0.2 s of silence) is offered to it while the recognizer waits
    for the end silence; when it returns a decision before the caller goes on, the turn ends there: the final is
    that text (``raw["early"]`` holds the decision) and ``ctx.open_turn`` follows the rest of the recognition.

    A speech host that dies (``SpeechLost``) costs at most the utterance: before the caller spoke, listening goes
    on at the next host; once they had begun, the turn ends as no input, so the dialogue asks again."""
    channel = ctx.channel
    # end to end: a service that takes the stream but never answers (a stuck decode queue) must not hold the call
    deadline = (float(config.get("no_input_timeout_s", 6.0)) + float(config.get("max_utterance_s", 30.0))
                + LISTEN_GRACE_S)
    try:
        async with asyncio.timeout(deadline):
            hosts = as_hosts(url)
            for _ in hosts.urls:
                try:
                    return await _hear(ctx, hosts, config, speaking, early)
                except SpeechLost as e:
                    log.warning("speech_host_lost", call_id=channel.call_id, url=e.url, mid_utterance=e.mid_utterance)
                    if e.mid_utterance or speaking.is_set():
                        ctx.emit(SpeechHeard, node=ctx.node, kind="no_input")
                        return Heard("no_input")
            ctx.emit(SpeechHeard, node=ctx.node, kind="unavailable")
            return Heard("unavailable")
    except TimeoutError:
        log.warning("speech_timeout", call_id=channel.call_id, after_s=round(deadline, 1))
        ctx.emit(SpeechHeard, node=ctx.node, kind="unavailable")
        return Heard("unavailable")


async def _hear(ctx: FlowContext, url: SpeechTarget, config: dict[str, Any], speaking: asyncio.Event,
                early: Early | None) -> Heard:
    channel = ctx.channel
    last_partial = ""
    stream = recognize(url, channel.audio_chunks(), channel.rate, config)
    pending: asyncio.Future | None = None
    deciding: asyncio.Task | None = None
    spec: Heard | None = None
    handed_over = False
    loop = asyncio.get_running_loop()
    held_until: float | None = None  # the prompt is held (speech onset) until then, unless speech starts
    try:
        while True:
            if pending is None and deciding is None and held_until is None:
                try:  # nothing else to wait for: read the recognizer in this task
                    heard = await anext(stream)
                except StopAsyncIteration:
                    break
            else:
                if pending is None:
                    pending = asyncio.ensure_future(anext(stream))
                timeout = None if held_until is None else max(0.0, held_until - loop.time())
                done, _ = await asyncio.wait({pending} | ({deciding} if deciding else set()), timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                if held_until is not None and loop.time() >= held_until:
                    held_until = None  # a cough, a click: the prompt goes on from where it was held
                    channel.hold_prompt(False)
                if deciding is not None and deciding in done:
                    decision = deciding.result() if deciding.exception() is None else None
                    deciding = None
                    if decision is not None and spec is not None and not pending.done():
                        turn = OpenTurn(spec.text, asyncio.Future(), match=decision)
                        turn.rest = asyncio.create_task(_rest_of_turn(ctx, stream, pending, turn))
                        handed_over = True
                        ctx.open_turn = turn
                        heard = Heard("final", spec.text, spec.confidence, None, spec.latency_s,
                                      raw={**spec.raw, "early": decision})
                        _heard_final(ctx, heard, early=True)
                        return heard
                if not pending.done():
                    continue
                try:
                    heard = pending.result()
                except StopAsyncIteration:
                    break
                finally:
                    pending = None
            if heard.kind == "onset":
                channel.hold_prompt(True)
                held_until = loop.time() + ONSET_HOLD_S
            elif heard.kind == "started":
                held_until = None
                speaking.set()
                channel.stop_prompt()
                ctx.emit(SpeechHeard, node=ctx.node, kind="started")
            elif heard.kind == "partial":
                if heard.text != last_partial:
                    last_partial = heard.text
                    ctx.emit(SpeechHeard, node=ctx.node, kind="partial", text=heard.text)
            elif heard.kind == "speculative":
                if early is not None and heard.text.strip():
                    spec = heard
                    if deciding is not None:
                        deciding.cancel()
                    deciding = asyncio.create_task(early(heard.text.strip(), heard.confidence))
            elif heard.kind == "resumed":
                spec = None
                if deciding is not None:
                    deciding.cancel()
                    deciding = None
            else:
                if deciding is not None and spec is not None and heard.kind == "final" \
                        and heard.text.strip() == spec.text.strip():
                    ctx.early_deciding, deciding = deciding, None  # the final's decision is on its way already
                _heard_final(ctx, heard)
                return heard
    except SpeechLost:
        raise  # hear_utterance tries the next host
    except SpeechUnavailable as e:
        log.warning("speech_unavailable", call_id=channel.call_id, error=str(e))
        ctx.emit(SpeechHeard, node=ctx.node, kind="unavailable")
        return Heard("unavailable")
    finally:
        if held_until is not None:
            channel.hold_prompt(False)
        if deciding is not None:
            deciding.cancel()
        if not handed_over:
            if pending is not None:
                if not pending.done():
                    pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                    await pending
            with contextlib.suppress(Exception):
                await stream.aclose()  # type: ignore[attr-defined]
    return Heard("no_input")


async def listen_once(ctx: FlowContext, options: ListenOptions, prompts: list[str],
                      early: Early | None = None) -> Heard:
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
        return await hear_utterance(ctx, url, config, speaking, early)
    finally:
        if not player.done():
            channel.stop_prompt()
        with contextlib.suppress(asyncio.CancelledError):
            await player
