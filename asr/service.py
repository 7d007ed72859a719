"""The speech service: one process owns the models and serves every IVR worker over websockets.

The wire protocol follows vosk-server's, so an existing vosk-server can stand in for it (and our
workers can use one): the client sends ``{"config": {"sample_rate": 8000}}``, then binary PCM16
chunks, then ``{"eof": 1}``; every message gets exactly one JSON reply — ``{"partial": "..."}`` while
listening, ``{"text": "...", ...}`` when an utterance ends. Our extensions ride along in the same
reply: ``"events"`` (speech_onset, speech_started, speech_resumed, no_input), ``"confidence"``, ``"timings"``,
``"busy": true``, ``"speculative": {"text", "confidence", "latency_s"}`` (the text the final will have unless the
caller goes on: then ``speech_resumed`` follows). With ``"push": true`` in the config that text is also sent by
itself the moment it is decoded, not with the reply to the next chunk (up to 100 ms later): a message nobody
asked for, so clients that read one reply per send (vosk-server's) leave it off.
Config extensions: ``priority`` (0 = a caller waiting for an answer), ``no_input_timeout_s``,
``end_silence_ms``, ``max_utterance_s``; ``expect`` ("digits" or "case_number") when the dialogue
expects a spoken number, with ``digits_length`` (e.g. 11 for a mobile number): the final's text is then
the digits or the canonical case number ("" when none was heard), and ``heard`` what whisper wrote;
``alternatives`` (1-4) when the dialogue expects one of a few replies (a list item, yes/no): the final then
carries ``"alternatives"``, the recognizer's next hypotheses, best first (n-best, as other recognizers'
``maxAlternatives``), so a reply misheard at first ("我要调个") may still be read from the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog
import websockets
from websockets.asyncio.server import ServerConnection, serve

from asr.decode_queue import PRIORITY_ANSWER, PRIORITY_PARTIAL, Busy, DecodeQueue
from asr.events import Final, NoInput, Partial, Speculative, SpeechEvent, SpeechOnset, SpeechResumed, SpeechStarted
from asr.numbers import EXPECTS
from asr.settings import AsrSettings, EndpointSettings
from asr.stream import StreamSession

log = structlog.get_logger(__name__)

MAX_MESSAGE = 1 << 20
MAX_TTS_BYTES = 4 << 20  # a minute at 16 kHz
MAX_ALTERNATIVES = 4  # whisper's beam holds 5 hypotheses
OVERRIDABLE = ("no_input_timeout_s", "end_silence_ms", "max_utterance_s", "min_speech_ms", "barge_in_ms")


def reply(events: list[SpeechEvent], last_partial: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names: list[str] = []
    for ev in events:
        if isinstance(ev, Final):
            out.update(text=ev.text, confidence=round(ev.confidence, 3), audio_s=ev.audio_s,
                       decode_s=round(ev.decode_s, 3), timings=ev.timings)
            if ev.heard is not None:
                out["heard"] = ev.heard
            if ev.alternatives:
                out["alternatives"] = list(ev.alternatives)
        elif isinstance(ev, Partial):
            last_partial = ev.text
        elif isinstance(ev, SpeechStarted):
            names.append("speech_started")
            out["speech_started_s"] = ev.at_s
        elif isinstance(ev, NoInput):
            names.append("no_input")
        elif isinstance(ev, SpeechOnset):
            names.append("speech_onset")
        elif isinstance(ev, Speculative):
            out["speculative"] = {"text": ev.text, "confidence": round(ev.confidence, 3), "latency_s": ev.latency_s}
        elif isinstance(ev, SpeechResumed):
            names.append("speech_resumed")
    if "text" not in out:
        out["partial"] = last_partial
    if names:
        out["events"] = names
    return out


class SpeechService:
    def __init__(self, asr: AsrSettings, decode_many, vosk=None, max_wait_s: float = 3.0, max_batch: int = 4,
                 session_threads: int = 16, synthesize=None):
        self.asr = asr
        #: text, rate -> PCM16 bytes (the TTS renderer and its cache); None when no voice is installed
        self.synthesize = synthesize
        self.queue = DecodeQueue(decode_many, max_batch=max_batch, max_wait_s=max_wait_s, lanes=asr.decode_lanes,
                                 partial_beam_size=asr.partial_beam_size) if decode_many else None
        self.vosk = vosk
        self.pool = ThreadPoolExecutor(max_workers=session_threads, thread_name_prefix="asr-session")
        self.sessions = 0
        self.counters: Counter = Counter()  # speculative / partial decodes of every session
        #: the dialogue sentences rendered ahead (hotline/speech_main.prerender_answers): total, rendered, ready
        self.prerender: dict[str, Any] = {}

    def _session(self, config: dict[str, Any]) -> tuple[StreamSession, int]:
        rate = int(config.get("sample_rate", 8000))
        if rate not in (8000, 16000):
            raise ValueError("sample_rate must be 8000 or 16000")
        priority = config.get("priority", PRIORITY_ANSWER)
        # a client may wait behind callers, never ahead of them
        if not (isinstance(priority, int) and PRIORITY_ANSWER <= priority <= PRIORITY_PARTIAL):
            raise ValueError(f"priority must be an integer from {PRIORITY_ANSWER} to {PRIORITY_PARTIAL}")
        expect = config.get("expect")
        if expect is not None and expect not in EXPECTS:
            raise ValueError(f"expect must be one of {', '.join(EXPECTS)}")
        length = config.get("digits_length")
        if length is not None and not (isinstance(length, int) and 1 <= length <= 32):
            raise ValueError("digits_length must be an integer from 1 to 32")
        number = (expect, length) if expect else None
        if not isinstance(config.get("push", False), bool):
            raise ValueError("push must be true or false")
        alternatives = config.get("alternatives", 0)
        if isinstance(alternatives, bool) or not isinstance(alternatives, int) \
                or not 0 <= alternatives <= MAX_ALTERNATIVES:
            raise ValueError(f"alternatives must be an integer from 0 to {MAX_ALTERNATIVES}")
        # validated like the settings themselves (model_copy would take 1e9 or a string as they come)
        endpoint = EndpointSettings.model_validate(
            {**self.asr.endpoint.model_dump(), **{k: config[k] for k in OVERRIDABLE if k in config}})
        settings = self.asr.model_copy(update={"endpoint": endpoint})
        decode = submit = None
        if self.queue is not None:
            queue = self.queue

            def decode(pcm, r):
                return queue.decode(pcm, r, priority, number, alternatives)

            def submit(pcm, r, kind: str):  # a speculative decode may become the final: the same n-best
                return queue.submit(pcm, r, priority if kind == "speculative" else PRIORITY_PARTIAL, number,
                                    optional=True, alternatives=alternatives if kind == "speculative" else 0)

        return StreamSession(rate, settings, decode=decode, vosk=self.vosk, submit=submit,
                             counters=self.counters), rate

    async def handle(self, ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        session: StreamSession | None = None
        last_partial = ""
        # a session is fed, polled and answered under one lock: its replies go out in order, and it is never used
        # from two threads at once
        lock = asyncio.Lock()
        pushing: set[asyncio.Task] = set()

        async def push(s: StreamSession) -> None:
            """A speculative decode is done: its text goes out now, not at the caller's next chunk."""
            nonlocal last_partial
            async with lock:
                if s is not session or s.closed:
                    return
                events = s.poll()  # no decode: under the lock, no feed is running
                if events:
                    out = reply(events, last_partial)
                    last_partial = out.get("partial", "")
                    with contextlib.suppress(websockets.ConnectionClosed):
                        await ws.send(json.dumps(out, ensure_ascii=False))

        def spawn(s: StreamSession) -> None:
            t = loop.create_task(push(s))
            pushing.add(t)
            t.add_done_callback(pushing.discard)

        def pushes(s: StreamSession) -> None:
            def done() -> None:  # in the decoding thread
                with contextlib.suppress(RuntimeError):  # the loop is gone: the connection ended
                    loop.call_soon_threadsafe(spawn, s)
            s.on_speculative_done = done

        self.sessions += 1
        try:
            async for msg in ws:
                if isinstance(msg, bytes):
                    if session is None:
                        session, _ = self._session({})
                    async with lock:
                        try:
                            events = await loop.run_in_executor(self.pool, session.feed, msg)
                        except Busy as e:
                            log.warning("utterance_refused_busy", expected_wait_s=round(e.expected_wait_s, 2),
                                        sessions=self.sessions)
                            await ws.send(json.dumps({"text": "", "busy": True,
                                                      "expected_wait_s": e.expected_wait_s}))
                            session.endpointer.reset_no_input()
                            continue
                        out = reply(events, last_partial)
                        last_partial = out.get("partial", "")
                        await ws.send(json.dumps(out, ensure_ascii=False))
                    continue
                try:
                    data = json.loads(msg)
                except json.JSONDecodeError:
                    await ws.send(json.dumps({"error": "not JSON"}))
                    continue
                if "config" in data:
                    try:
                        config = data["config"] or {}
                        if not isinstance(config, dict):
                            raise TypeError("config must be a JSON object")
                        session, _ = self._session(config)
                        if config.get("push") is True:
                            pushes(session)
                    except (ValueError, TypeError) as e:
                        await ws.send(json.dumps({"error": str(e)}))
                        await ws.close(1003, "bad config")
                        return
                    last_partial = ""
                elif "eof" in data:
                    async with lock:
                        events = await loop.run_in_executor(self.pool, session.close) if session else []
                    out = reply(events, last_partial)
                    out.setdefault("text", "")
                    out.pop("partial", None)
                    await ws.send(json.dumps(out, ensure_ascii=False))
                    await ws.close()
                    return
                elif "tts" in data:
                    await self._tts(ws, data["tts"] or {})
                elif "stats" in data:
                    await ws.send(json.dumps(self.stats()))
                else:
                    await ws.send(json.dumps({"error": "expected config, eof or binary audio"}))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.sessions -= 1
            for t in list(pushing):
                t.cancel()

    async def _tts(self, ws: ServerConnection, req: dict[str, Any]) -> None:
        """``{"tts": {"text", "rate"}}`` -> one binary message of PCM16 mono at ``rate`` (or an error)."""
        if self.synthesize is None:
            await ws.send(json.dumps({"error": "no TTS voice installed (scripts/setup_tts_venv.sh)"}))
            return
        text, rate = str(req.get("text", "")), int(req.get("rate", 8000))
        try:
            pcm = await asyncio.get_running_loop().run_in_executor(self.pool, self.synthesize, text, rate)
        except Exception as e:  # the caller hears a fallback prompt; the service goes on
            log.warning("tts_failed", error=str(e), chars=len(text))
            await ws.send(json.dumps({"error": f"tts failed: {e}"}))
            return
        await ws.send(pcm)

    def stats(self) -> dict[str, Any]:
        s = self.queue.stats if self.queue else None
        return {"sessions": self.sessions, "decoded": s.decoded if s else 0, "batches": s.batches if s else 0,
                "refused_busy": s.refused_busy if s else 0, "max_queue": s.max_queue if s else 0,
                "batch_s_avg": round(s.batch_s_avg, 3) if s else 0.0,
                "optional_refused": s.optional_refused if s else 0, "cancelled": s.cancelled if s else 0,
                **{k: self.counters.get(k, 0) for k in ("speculative", "speculative_used", "speculative_wasted",
                                                        "speculative_refused", "partial", "partial_refused")},
                "prerender": dict(self.prerender)}

    async def serve(self, host: str, port: int, stop: asyncio.Event) -> None:
        # no permessage-deflate: PCM hardly compresses, and deflating a 10 s answer cost ~9 ms before the caller
        # heard it (plus every 100 ms chunk of every caller, both ends)
        async with serve(self.handle, host, port, max_size=MAX_MESSAGE, ping_interval=20,
                         write_limit=MAX_TTS_BYTES, compression=None):
            log.info("speech_service_ready", host=host, port=port)
            await stop.wait()
        if self.queue:
            self.queue.close()
        self.pool.shutdown(wait=False, cancel_futures=True)
