"""Prompt audio: WAV files loaded once as PCM16 at the bridge clock, and the per-call playout.

The playout is shared between the worker's asyncio thread (start/stop) and pjmedia's clock
thread (``next_frame`` every 20 ms), so it is guarded by a lock and never does I/O.
"""

from __future__ import annotations

import threading
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from asr.audio import read_wav as read_any_wav
from asr.errors import AudioFormatError

LEAD_SILENCE_PEAK = 100  # about -50 dBFS: below it the start of a clip is silence


class PromptError(Exception):
    pass


@dataclass(frozen=True)
class Clip:
    name: str
    pcm: bytes  # PCM16 little-endian mono at the library's clock rate
    rate: int

    @property
    def duration_ms(self) -> int:
        return len(self.pcm) * 1000 // (2 * self.rate)

    def prompt_start(self, keep_ms: int = 20) -> Clip:
        """The clip from its first sound (``keep_ms`` before it): rendered prompts and the voice's sentences begin
        with ~100 ms of silence, which a reply to the caller's question should not wait out."""
        pcm = np.frombuffer(self.pcm, dtype="<i2")
        loud = np.flatnonzero(np.abs(pcm) > LEAD_SILENCE_PEAK)
        start = max(0, int(loud[0]) - self.rate * keep_ms // 1000) if len(loud) else 0
        return Clip(self.name, self.pcm[2 * start:], self.rate) if start else self


def read_wav(path: Path, rate: int) -> bytes:
    """PCM16 mono at ``rate`` from a PCM WAV file (8/16/24/32-bit int, any rate, mono or stereo)."""
    try:
        with wave.open(str(path), "rb") as w:
            width, channels, src_rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except wave.Error:
        return _read_g711_wav(path, rate)  # μ-law / A-law phone recordings
    except (OSError, EOFError) as e:
        raise PromptError(f"{path}: not a readable PCM WAV file ({e})") from None
    if width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 4:
        samples = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648.0
    else:
        raise PromptError(f"{path}: unsupported sample width {width}")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    if src_rate != rate:
        samples = soxr.resample(samples, src_rate, rate, quality="HQ")
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def _read_g711_wav(path: Path, rate: int) -> bytes:
    try:
        samples, src_rate = read_any_wav(path)
    except AudioFormatError as e:
        raise PromptError(str(e)) from None
    if src_rate != rate:
        samples = soxr.resample(samples.astype(np.float32) / 32768.0, src_rate, rate, quality="HQ")
        return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    return samples.astype("<i2").tobytes()


class PromptLibrary:
    """Prompts by id (``<dir>/<id>.wav``), loaded lazily and kept for the process's life."""

    def __init__(self, directory: Path, rate: int):
        self.directory = directory
        self.rate = rate
        self._cache: dict[str, Clip] = {}
        self._lock = threading.Lock()

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.wav"

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def get(self, name: str) -> Clip:
        clip = self._cache.get(name)
        if clip is None:
            clip = Clip(name, read_wav(self.path(name), self.rate), self.rate)
            with self._lock:
                self._cache[name] = clip
        return clip

    def silence(self, seconds: float) -> Clip:
        return Clip("silence", bytes(2 * int(self.rate * seconds)), self.rate)


class Playout:
    """What the call hears next. One clip at a time; ``stop`` takes effect on the next frame."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pcm: bytes = b""
        self._pos = 0
        self._on_done: Callable[[int, bool], None] | None = None
        self._held = False

    def hold(self, held: bool) -> None:
        """Silence the clip where it is (True) or go on from there (False); the next clip starts unheld."""
        self._held = held

    def start(self, pcm: bytes, on_done: Callable[[int, bool], None]) -> None:
        """Play ``pcm``; ``on_done(bytes_played, interrupted)`` runs on the clock thread at the end."""
        with self._lock:
            previous = self._take()
            self._pcm, self._pos, self._on_done = pcm, 0, on_done
        if previous:
            previous[0](previous[1], True)

    def stop(self) -> int:
        """Stop at once; returns bytes played. The done-callback runs here with interrupted=True."""
        with self._lock:
            taken = self._take()
        if taken:
            taken[0](taken[1], True)
            return taken[1]
        return 0

    @property
    def active(self) -> bool:
        return self._on_done is not None

    def _take(self) -> tuple[Callable[[int, bool], None], int] | None:
        cb, pos = self._on_done, self._pos
        self._pcm, self._pos, self._on_done, self._held = b"", 0, None, False
        return (cb, pos) if cb else None

    def next_frame(self, size: int) -> bytes | None:
        finished = None
        with self._lock:
            if self._on_done is None or self._held:
                return None
            chunk = self._pcm[self._pos : self._pos + size]
            self._pos += len(chunk)
            if self._pos >= len(self._pcm):
                finished = self._take()
        if finished:
            finished[0](finished[1], False)
        if not chunk:
            return None
        if len(chunk) < size:
            chunk += bytes(size - len(chunk))
        return chunk
