"""Sentences that are not menu prompts (the hub's ``say``, a case's status) turned into audio for the caller.

A sentence whose text is exactly a rendered prompt's (``manifest.json`` of the prompt directory: the hub's fixed
apologies, "验证未通过，您还可以再试两次。" …) plays that prompt's WAV at once; any other text comes from the speech
service's voice (cached there by content). ``None`` when neither can speak it: the caller then hears a fixed
fallback prompt instead.

:func:`speak_parts` plays sentences one after the other and renders the next while the current one plays, so
the first sentence starts as soon as it alone is rendered — at once when it begins with a rendered phrase
("您查询的案件，" is a prompt), the rest of it rendering while that plays.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import structlog

from ivr.audio import Clip
from ivr.contract import PromptPlayed
from ivr.flow.context import FlowContext
from ivr.speech_client import SpeechUnavailable, synthesize

log = structlog.get_logger(__name__)

TTS_TIMEOUT_S = 8.0  # one sentence; a cold 40-character sentence renders in ~1 s on 2 cores
_index: dict[Path, dict[str, str]] = {}
_index_lock = threading.Lock()


def text_hash(text: str) -> str:
    """A short, stable id of a sentence (call records name synthesized audio by it)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


def local_phrases(directory: Path) -> dict[str, str]:
    """text -> prompt id of every rendered TTS prompt in ``directory`` (read once per directory)."""
    with _index_lock:
        found = _index.get(directory)
        if found is None:
            found = {}
            try:
                manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
                for pid, entry in (manifest.get("prompts") or {}).items():
                    if not isinstance(entry, dict) or entry.get("kind") != "tts":
                        continue
                    text = entry.get("text")
                    if isinstance(text, str) and (directory / f"{pid}.wav").is_file():
                        found.setdefault(text.strip(), pid)
            except (OSError, ValueError, AttributeError) as e:
                log.info("no_prompt_manifest", dir=str(directory), error=str(e))
            _index[directory] = found
        return found


async def render(ctx: FlowContext, text: str, name: str, timeout: float = TTS_TIMEOUT_S,
                 keep: bool = False) -> Clip | None:
    """The audio of ``text`` named ``name``: a rendered prompt with this text, else the voice; None if neither.
    ``keep``: the sentence is said to many callers (a knowledge-base answer), so its audio stays in the worker's
    voice cache (``ctx.services.voice_cache``); not a sentence with one caller's case details."""
    text = text.strip()
    if not text:
        return None
    pid = local_phrases(ctx.prompts.directory).get(text)
    if pid is not None:
        clip = ctx.prompts.get(pid)
        return Clip(name, clip.pcm, clip.rate)
    url = ctx.services.speech_url
    if not url:
        return None
    rate = ctx.prompts.rate
    cache = ctx.services.voice_cache if keep else None
    pcm = cache.get(text, rate) if cache is not None else None
    if pcm is None:
        try:
            pcm = await asyncio.wait_for(synthesize(url, text, rate), timeout)
        except (SpeechUnavailable, TimeoutError) as e:
            log.warning("voice_unavailable", call_id=ctx.channel.call_id, chars=len(text), error=str(e)[:200])
            return None
        if cache is not None:
            cache.put(text, rate, pcm)
    return Clip(name, pcm, rate)


async def say(ctx: FlowContext, text: str, name: str, fallback: list[str] | None = None,
              barge_in: bool = True) -> bool:
    """Speak ``text`` (or play the ``fallback`` prompts when it cannot be spoken). False: the caller pressed a
    key during it (barge-in)."""
    clip = await render(ctx, text, name)
    if clip is not None:
        return not (await ctx.play_clip(clip, barge_in, PromptPlayed, name)).interrupted
    for p in fallback or []:
        if (await ctx.play(p, barge_in)).interrupted:
            return False
    return True


CLAUSE_MARKS = "，、；：,;:"


def split_fixed(parts: list[str], local: dict[str, str]) -> list[str]:
    """Each part that begins with a rendered phrase ending at a clause mark ("您查询的案件，") split in two: the
    phrase plays at once while the rest renders. The words stay the same, in the same order."""
    out: list[str] = []
    for part in parts:
        cut = 0
        for i, ch in enumerate(part[:-1]):
            if ch in CLAUSE_MARKS and part[: i + 1] in local:
                cut = i + 1
        out += [part[:cut], part[cut:]] if cut else [part]
    return out


@dataclass
class Spoken:
    played: int  # sentences played to the end
    interrupted: bool  # a key stopped one
    failed: bool  # one could not be rendered (the rest was not played)


async def speak_parts(ctx: FlowContext, parts: list[str], name: str, barge_in: bool = True) -> Spoken:
    """Play ``parts`` in order, each named ``{name}:{i}:{text}``; the next renders while the current plays. A part
    that begins with a rendered phrase is played as that phrase and the rest (:func:`split_fixed`)."""
    parts = split_fixed([p for p in (s.strip() for s in parts) if p], local_phrases(ctx.prompts.directory))
    if not parts:
        return Spoken(0, False, True)

    def label(i: int) -> str:
        return f"{name}:{i + 1}:{parts[i]}"

    pending: asyncio.Task[Clip | None] = asyncio.create_task(render(ctx, parts[0], label(0)))
    played = 0
    try:
        for i in range(len(parts)):
            clip = await pending
            if clip is None:
                return Spoken(played, False, True)
            if i + 1 < len(parts):
                pending = asyncio.create_task(render(ctx, parts[i + 1], label(i + 1)))
            result = await ctx.play_clip(clip, barge_in, PromptPlayed, clip.name)
            if result.interrupted:
                return Spoken(played, True, False)
            played += 1
        return Spoken(played, False, False)
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending
