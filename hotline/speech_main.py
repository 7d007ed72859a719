"""Run the speech service: load the recognizer once, serve IVR workers until SIGTERM."""

from __future__ import annotations

import asyncio
import signal

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
                         max_batch=s.speech.max_batch, session_threads=s.speech.session_threads)


async def _main(s: Settings) -> None:
    service = build_service(s)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.serve(s.speech.host, s.speech.port, stop)


def run_speech(s: Settings) -> None:
    asyncio.run(_main(s))
