"""Audio post-processing shared by the renderer and scripts/render_prompts.py (numpy only)."""

from __future__ import annotations

import math
import os
import wave
from pathlib import Path

import numpy as np

from tts.voice import (
    CHUNK_MARGIN_S,
    EDGE_SILENCE_S,
    FADE_S,
    PEAK_DBFS,
    SILENCE_ABS_DB,
    SILENCE_REL_DB,
)


def frame_levels_db(audio: np.ndarray, rate: int, frame_s: float = 0.01) -> np.ndarray:
    n = max(1, int(rate * frame_s))
    pad = (-len(audio)) % n
    frames = np.abs(np.pad(audio, (0, pad))).reshape(-1, n).max(axis=1)
    return 20.0 * np.log10(frames + 1e-9)


def speech_bounds(audio: np.ndarray, rate: int) -> tuple[int, int] | None:
    """Sample range [start, end) from the first to the last non-silent 10 ms frame, or None."""
    if len(audio) == 0:
        return None
    levels = frame_levels_db(audio, rate)
    threshold = max(float(levels.max()) + SILENCE_REL_DB, SILENCE_ABS_DB)
    loud = np.flatnonzero(levels > threshold)
    if len(loud) == 0:
        return None
    n = int(rate * 0.01)
    return int(loud[0]) * n, min(len(audio), (int(loud[-1]) + 1) * n)


def fade_edges(audio: np.ndarray, rate: int) -> np.ndarray:
    n = min(int(rate * FADE_S), len(audio) // 2)
    if n > 0:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, math.pi, n, dtype=np.float64))
        audio = audio.copy()
        audio[:n] *= ramp
        audio[-n:] *= ramp[::-1]
    return audio


def finish(audio: np.ndarray, rate: int) -> np.ndarray:
    """Trim to ~EDGE_SILENCE_S of silence on both sides, remove DC, normalise the peak to PEAK_DBFS."""
    audio = audio.astype(np.float64) - float(np.mean(audio))
    bounds = speech_bounds(audio, rate)
    if bounds is None:
        raise RuntimeError("synthesized audio is silent")
    start, end = bounds
    edge = int(rate * EDGE_SILENCE_S)
    margin = int(rate * CHUNK_MARGIN_S)
    # Keep a little of the original around the detected speech (soft onsets and decays), fade it,
    # and pad with digital silence to EDGE_SILENCE_S.
    start, end = max(0, start - margin), min(len(audio), end + margin)
    speech = fade_edges(audio[start:end], rate)
    peak = float(np.max(np.abs(speech)))
    speech *= 10.0 ** (PEAK_DBFS / 20.0) / peak
    pad = np.zeros(max(0, edge - margin))
    return np.concatenate([pad, speech, pad])


def to_pcm16(audio: np.ndarray) -> bytes:
    return np.clip(np.round(audio * 32767.0), -32768, 32767).astype("<i2").tobytes()


def write_wav_atomic(path: Path, pcm: bytes, rate: int) -> None:
    """Write mono PCM16 to ``path`` through a temporary file in the same directory (readers never see
    a partial file; concurrent writers of the same path each replace it whole)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(pcm):x}.tmp")
    try:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
