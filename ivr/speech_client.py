"""The worker's side of the speech service protocol (vosk-server compatible; see asr/service.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
import websockets

from ivr.speech_hosts import SpeechTarget, as_hosts

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT_S = 2.0
IN_FLIGHT = 8  # a recorded message's chunks (200 ms each) sent ahead of the service's replies


@dataclass
class Heard:
    kind: str  # onset | started | partial | speculative | resumed | final | no_input | busy | unavailable
    text: str = ""
    confidence: float | None = None
    audio_s: float | None = None
    latency_s: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)


class SpeechUnavailable(Exception):
    pass


class SpeechLost(SpeechUnavailable):
    """The speech service dropped a stream it had taken (its host died); the host is marked down.
    ``mid_utterance``: the caller had begun speaking, so that utterance is lost (the dialogue asks again)."""

    def __init__(self, url: str, mid_utterance: bool):
        super().__init__(f"speech service at {url} closed the connection")
        self.url, self.mid_utterance = url, mid_utterance


def parse(msg: dict[str, Any]) -> list[Heard]:
    out: list[Heard] = []
    events = msg.get("events") or []
    if "speech_onset" in events:
        out.append(Heard("onset", raw=msg))
    if "speech_started" in events:
        out.append(Heard("started", raw=msg))
    if msg.get("busy"):
        out.append(Heard("busy", raw=msg))
    elif "text" in msg:
        timings = msg.get("timings") or {}
        out.append(Heard("final", msg.get("text") or "", msg.get("confidence"), msg.get("audio_s"),
                         timings.get("latency_s"), raw=msg))
    elif msg.get("partial"):
        out.append(Heard("partial", msg["partial"], raw=msg))
    spec = msg.get("speculative")
    if isinstance(spec, dict) and "text" not in msg:  # the final's text unless the caller goes on
        out.append(Heard("speculative", str(spec.get("text") or ""), spec.get("confidence"), None,
                         spec.get("latency_s"), raw=msg))
    if "speech_resumed" in events:
        out.append(Heard("resumed", raw=msg))
    if "no_input" in events:
        out.append(Heard("no_input", raw=msg))
    return out


async def _connect(target: SpeechTarget, max_size: int) -> tuple[str, websockets.ClientConnection]:
    """A connection to the first of ``target``'s hosts that takes one; the others are marked down."""
    hosts = as_hosts(target)
    errors = []
    for url in hosts.order():
        try:
            # compression off: audio hardly compresses and deflate costs time on both ends (asr/service.py)
            ws = await asyncio.wait_for(websockets.connect(url, max_size=max_size, open_timeout=CONNECT_TIMEOUT_S,
                                                           compression=None), CONNECT_TIMEOUT_S + 0.5)
        except (OSError, TimeoutError, websockets.WebSocketException) as e:
            hosts.failed(url, f"connect: {type(e).__name__}: {e}")
            errors.append(f"{url}: {e}")
            continue
        return url, ws
    raise SpeechUnavailable(f"speech service unreachable: {'; '.join(errors)}")


@contextlib.asynccontextmanager
async def _stream(target: SpeechTarget, audio: AsyncIterator[bytes], rate: int, config: dict[str, Any],
                  eof: bool) -> AsyncIterator[tuple[str, asyncio.Queue[dict[str, Any] | None]]]:
    """A streaming session on the first host that takes it: ``audio`` is sent as it comes (then ``{"eof": 1}``
    when ``eof``); gives the host's URL and a queue of each JSON reply, then None when the service closes."""
    url, ws = await _connect(target, 1 << 20)
    replies: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for chunk in audio:
                await ws.send(chunk)
            if eof:
                await ws.send(json.dumps({"eof": 1}))
        except websockets.ConnectionClosed:
            pass

    async def read() -> None:
        try:
            async for msg in ws:
                if isinstance(msg, str):
                    with contextlib.suppress(json.JSONDecodeError):
                        await replies.put(json.loads(msg))
        except websockets.ConnectionClosed:
            pass
        finally:
            await replies.put(None)

    try:
        await ws.send(json.dumps({"config": {"sample_rate": rate, **config}}))
        tasks = [asyncio.create_task(pump()), asyncio.create_task(read())]
        try:
            yield url, replies
        finally:
            for t in tasks:
                t.cancel()
    finally:
        with contextlib.suppress(Exception):
            await ws.close()


async def recognize(target: SpeechTarget, audio: AsyncIterator[bytes], rate: int,
                    config: dict[str, Any]) -> AsyncIterator[Heard]:
    """Stream ``audio`` to the service; yield what it hears until a final, no-input or busy result.
    A stream the service drops raises ``SpeechLost`` (its host is marked down for the next try)."""
    speaking, hosts = False, as_hosts(target)
    # push: the speculative text as soon as it is decoded (this reader does not wait for one reply per chunk)
    async with _stream(hosts, audio, rate, {**config, "push": True}, eof=False) as (url, replies):
        while True:
            msg = await replies.get()
            if msg is None:
                hosts.failed(url, "stream dropped")
                raise SpeechLost(url, speaking)
            for heard in parse(msg):
                speaking = speaking or heard.kind in ("started", "partial", "speculative")
                yield heard
                if heard.kind in ("final", "no_input", "busy"):
                    return


def number_config(expect: str, digits_length: int | None = None) -> dict[str, Any]:
    """Config for a turn where the dialogue expects a spoken number: ``expect`` is "digits" (phone numbers,
    query codes, ID numbers; ``digits_length`` of them preferred) or "case_number". The final's text is
    then the digits or the canonical case number, "" when none was heard; ``Heard.raw["heard"]`` keeps
    what the recognizer wrote. Merge it into the config given to ``recognize``."""
    if expect not in ("digits", "case_number"):
        raise ValueError(f"expect: digits or case_number, not {expect!r}")
    return {"expect": expect, **({"digits_length": digits_length} if digits_length else {})}


async def synthesize(target: SpeechTarget, text: str, rate: int, timeout: float = 20.0) -> bytes:
    """PCM16 mono at ``rate`` for ``text`` from the speech service's voice (cached there)."""
    url, ws = await _connect(target, 8 << 20)
    try:
        async with ws:
            await ws.send(json.dumps({"tts": {"text": text, "rate": rate}}))
            reply = await asyncio.wait_for(ws.recv(), timeout)
    except (OSError, TimeoutError, websockets.WebSocketException) as e:
        raise SpeechUnavailable(f"speech service at {url}: {e}") from None
    if isinstance(reply, str):
        raise SpeechUnavailable(f"speech service could not speak: {reply[:200]}")
    return reply


async def transcribe(target: SpeechTarget, audio: AsyncIterator[bytes], rate: int, config: dict[str, Any],
                     idle_timeout_s: float = 30.0, on_reply: Callable[[], None] | None = None) -> AsyncIterator[Heard]:
    """Stream ``audio`` to the service and yield everything it hears (several utterances) until the
    audio ends; then ``{"eof": 1}`` decodes what is left. For messages and bridged calls. ``on_reply`` is called
    for each reply (the service answers each audio message once)."""
    async with _stream(target, audio, rate, config, eof=True) as (_, replies):
        while True:
            msg = await asyncio.wait_for(replies.get(), idle_timeout_s)
            if msg is None:
                return
            if on_reply is not None:
                on_reply()
            for heard in parse(msg):
                yield heard


async def _chunks(pcm: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(pcm), size):
        yield pcm[i:i + size]
        await asyncio.sleep(0)


async def transcribe_pcm(target: SpeechTarget, pcm: bytes, rate: int, timeout: float | None = None) -> str:
    """The text of a recorded message (every utterance in it), decoded at background priority. ``timeout``
    (default: 2 min plus 4 s per second of audio) is generous: the decode waits behind every caller's turn."""
    # long utterances go whole to the service, which cuts them at pauses into encoder windows
    config = {"priority": 5, "no_input_timeout_s": 3600, "max_utterance_s": 60.0}
    limit = timeout if timeout is not None else 120.0 + 4.0 * len(pcm) / 2 / rate
    texts: list[str] = []
    # at most IN_FLIGHT chunks unanswered: sent all at once, they queued before the service's keepalive pong, which
    # it then read too late on a loaded host and closed the stream (a 60 s message kept 271 of its 337 characters)
    credits = asyncio.Semaphore(IN_FLIGHT)

    async def paced() -> AsyncIterator[bytes]:
        async for chunk in _chunks(pcm, rate // 5):
            await credits.acquire()
            yield chunk

    async def run() -> None:
        async for heard in transcribe(target, paced(), rate, config, idle_timeout_s=limit, on_reply=credits.release):
            if heard.kind == "final" and heard.text:
                texts.append(heard.text)

    try:
        await asyncio.wait_for(run(), limit)
    except TimeoutError:  # what was heard is kept; the recording itself is never lost
        log.warning("message_transcript_cut", seconds=round(len(pcm) / 2 / rate, 1), limit_s=round(limit),
                    chars=sum(map(len, texts)))
    return "".join(texts)
