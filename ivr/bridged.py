"""What is said while the caller talks to a person (an operator, a judge's team): each leg transcribed.

Used by the operator queue (ivr/queueing.py) and the judge transfer (ivr/judge_call.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog

from ivr.contract import SpeechHeard
from ivr.flow.context import FlowContext
from ivr.speech_client import SpeechUnavailable, transcribe

log = structlog.get_logger(__name__)


async def transcribe_leg(ctx: FlowContext, speaker: str, chunks: AsyncIterator[bytes], url: str) -> None:
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
