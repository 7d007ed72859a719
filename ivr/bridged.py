"""While the caller talks to a person (an operator, a judge's team): each side transcribed, and the call
recorded in stereo when the IVR records bridged calls. Used by the operator queue (ivr/queueing.py) and the
judge transfer (ivr/judge_call.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import structlog

from ivr.bridge import OperatorLeg
from ivr.contract import SpeechHeard
from ivr.flow.context import FlowContext
from ivr.recording import StereoRecorder, recordings_dir
from ivr.speech_client import SpeechUnavailable, transcribe
from ivr.speech_hosts import SpeechTarget

log = structlog.get_logger(__name__)

_flushing: set[asyncio.Task] = set()  # transcriptions finishing after their call
#: after a hang-up each side's transcription may take this long to decode what was still being said
FLUSH_S = 15.0


@dataclass
class Talk:
    """One bridged conversation's transcriptions and recording."""

    leg: OperatorLeg
    tasks: list[asyncio.Task] = field(default_factory=list)
    recorder: StereoRecorder | None = None


def flushing() -> int:
    """How many ended talks' transcriptions are still decoding their last words (a stopping worker waits)."""
    return len(_flushing)


async def stop_flushing() -> None:
    """Cancel the transcriptions still finishing and let them end (a stopping worker that waited long enough):
    each holds its leg's pjsua call, which must be gone before the SIP stack is (destroyed after it, it aborted
    the process in ``pjsua_call_set_user_data``)."""
    tasks = list(_flushing)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def start_talk(ctx: FlowContext, leg: OperatorLeg, name: str) -> Talk:
    """Transcribe both sides (with a speech service and caller audio); record to ``<call_id>-<name>.wav``."""
    ch, talk = ctx.channel, Talk(leg)
    ctx.talking += 1
    url = ctx.services.speech_url
    if url and ch.hears:
        talk.tasks.append(asyncio.create_task(transcribe_leg(ctx, "caller", ch.audio_chunks(), url)))
        talk.tasks.append(asyncio.create_task(transcribe_leg(ctx, "operator", leg.operator_chunks(), url)))
    if ctx.services.record_bridged_calls:
        talk.recorder = StereoRecorder(recordings_dir(ctx) / f"{ch.call_id}-{name}.wav", ctx.prompts.rate)
        ch.audio_taps.append(talk.recorder.caller)
        leg.taps.append(talk.recorder.operator)
    return talk


def end_talk(ctx: FlowContext, talk: Talk, flush_s: float | None = FLUSH_S) -> float | None:
    """Let each transcription finish what was still being said, for at most ``flush_s`` (None: stop them now),
    and close the recording; its seconds, or None without one. Not cancelled at once: each leg's audio ends with
    the call, then the speech service decodes what was left ({"eof": 1}), so the last words before a hang-up
    reach the record."""
    ctx.talking = max(0, ctx.talking - 1)
    for t in talk.tasks:
        if flush_s is None:
            t.cancel()
        else:
            _flushing.add(t)
            t.add_done_callback(_flushing.discard)
            asyncio.get_running_loop().call_later(flush_s, t.cancel)
    if talk.recorder is None:
        return None
    with contextlib.suppress(ValueError):
        ctx.channel.audio_taps.remove(talk.recorder.caller)
    talk.leg.taps.clear()
    return talk.recorder.close()


async def transcribe_leg(ctx: FlowContext, speaker: str, chunks: AsyncIterator[bytes], url: SpeechTarget) -> None:
    """One side of a bridged call on the record: SpeechHeard partials and finals with their ``speaker``."""
    config = {"priority": 1, "no_input_timeout_s": 24 * 3600.0}
    last_partial = ""
    try:
        async for heard in transcribe(url, chunks, ctx.prompts.rate, config, idle_timeout_s=24 * 3600.0):
            if heard.kind == "partial":
                if heard.text and heard.text != last_partial:
                    last_partial = heard.text
                    ctx.emit(SpeechHeard, node=ctx.node, speaker=speaker, kind="partial", text=heard.text)
            elif heard.kind in ("started", "busy"):
                ctx.emit(SpeechHeard, node=ctx.node, speaker=speaker, kind=heard.kind)
            elif heard.kind == "final" and heard.text:
                last_partial = ""
                ctx.emit(SpeechHeard, node=ctx.node, speaker=speaker, kind="final", text=heard.text,
                         confidence=heard.confidence, audio_s=heard.audio_s, latency_s=heard.latency_s)
    except SpeechUnavailable as e:
        log.warning("bridge_transcription_unavailable", call_id=ctx.channel.call_id, speaker=speaker, error=str(e))
