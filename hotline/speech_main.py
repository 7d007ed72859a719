"""Run the speech service: load the recognizer once, serve IVR workers until SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import threading

import structlog

from hotline.settings import Settings

log = structlog.get_logger(__name__)


def build_service(s: Settings):
    from asr.service import SpeechService

    decode_many = None
    vosk = None
    if s.asr.vosk_model_dir is not None:
        from asr.vosk_engine import VoskEngine

        vosk = VoskEngine(s.asr.vosk_model_dir, s.asr.vosk_grammar)
    if s.asr.engine == "whisper":
        from asr.whisper_engine import WhisperEngine

        engine = WhisperEngine(s.asr.whisper_dir(s.home), s.asr)  # raises ModelError naming the dir
        decode_many = engine.transcribe_many
    return SpeechService(s.asr, decode_many, vosk=vosk, max_wait_s=s.speech.max_wait_s,
                         max_batch=s.speech.max_batch, session_threads=s.speech.session_threads,
                         synthesize=_synthesizer(s))


def _synthesizer(s: Settings):
    """text, rate -> PCM16 bytes through the TTS renderer's cache; None when the voice is not installed."""
    from tts.renderer import Renderer

    venv = s.tts.venv_path(s.home)
    if not (venv / "bin" / "python").exists():
        log.warning("tts_not_installed", venv=str(venv), fix="scripts/setup_tts_venv.sh")
        return None
    renderer = Renderer.from_settings(s.tts, s.home)

    def synthesize(text: str, rate: int) -> bytes:
        from ivr.audio import read_wav

        return read_wav(renderer.render(text, rate), rate)

    synthesize.renderer = renderer  # type: ignore[attr-defined]
    return synthesize


def prerender_answers(s: Settings, synthesize, stop) -> None:
    """Keep every enabled FAQ answer rendered (8 kHz) so callers never wait for the voice; follows edits."""
    from hotline.db import make_engine, session_factory
    from knowledge_base.settings import fill_placeholders
    from knowledge_base.store import kb_stamp, list_entries

    engine = make_engine(s.db_url)
    seen: int | None = None
    try:
        while not stop.is_set():
            try:
                with session_factory(engine)() as db:
                    stamp = kb_stamp(db)
                    texts = [] if stamp == seen else [fill_placeholders(e.answer, s.court)
                                                      for e in list_entries(db, enabled=True)]
                for text in texts:
                    if stop.is_set():
                        break
                    synthesize(text, s.sip.clock_rate)
                seen = stamp
            except Exception as e:  # the database may not be migrated yet, the voice may fail: retry
                log.warning("prerender_failed", error=str(e))
            stop.wait(10.0)
    finally:
        engine.dispose()


async def _main(s: Settings) -> None:
    service = build_service(s)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    halt = threading.Event()
    if service.synthesize is not None and s.speech.prerender_answers:
        threading.Thread(target=prerender_answers, args=(s, service.synthesize, halt), daemon=True,
                         name="prerender").start()
    try:
        await service.serve(s.speech.host, s.speech.port, stop)
    finally:
        halt.set()
        renderer = getattr(service.synthesize, "renderer", None)
        if renderer is not None:
            renderer.close()


def run_speech(s: Settings) -> None:
    asyncio.run(_main(s))
