"""Telephone audio in: WAV files (PCM16, G.711 μ-law or A-law; mono; 8 or 16 kHz) and resampling."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import soxr

from asr.errors import AudioFormatError

RATES = (8000, 16000)
MODEL_RATE = 16000
FIX = "convert it with: sox IN.wav -r 16000 -c 1 -b 16 -e signed-integer OUT.wav"
_PCM, _ALAW, _MULAW = 1, 6, 7


def _mulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.uint8)
    t = ((u & 0x0F).astype(np.int32) << 3) + 0x84
    t <<= (u & 0x70).astype(np.int32) >> 4
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _alaw_table() -> np.ndarray:
    a = np.arange(256, dtype=np.uint8) ^ 0x55
    t = (a & 0x0F).astype(np.int32) << 4
    seg = (a & 0x70).astype(np.int32) >> 4
    t = np.where(seg == 0, t + 8, np.where(seg == 1, t + 0x108, (t + 0x108) << np.maximum(seg - 1, 0)))
    return np.where(a & 0x80, t, -t).astype(np.int16)


MULAW = _mulaw_table()
ALAW = _alaw_table()


def read_wav(path: Path | str) -> tuple[np.ndarray, int]:
    """PCM16 samples (int16) and the sample rate; AudioFormatError naming the file otherwise."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AudioFormatError(f"{path}: no such file") from None
    except OSError as e:
        raise AudioFormatError(f"{path}: cannot read ({e.strerror or e})") from None
    if not data:
        raise AudioFormatError(f"{path}: empty file")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFormatError(f"{path}: not a WAV file (no RIFF/WAVE header); {FIX}")
    fmt: tuple[int, int, int, int] | None = None
    body: bytes | None = None
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        chunk = data[pos + 8:pos + 8 + size]
        if cid == b"fmt " and len(chunk) >= 16:
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", chunk[:16])
            if tag == 0xFFFE and len(chunk) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the subformat's tag
                tag = struct.unpack("<H", chunk[24:26])[0]
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            body = chunk
            break
        pos += 8 + size + (size & 1)
    if fmt is None or body is None:
        raise AudioFormatError(f"{path}: broken WAV (no fmt or data chunk); {FIX}")
    tag, channels, rate, bits = fmt
    kind = {(_PCM, 16): "pcm16", (_MULAW, 8): "mulaw", (_ALAW, 8): "alaw"}.get((tag, bits))
    if kind is None or channels != 1 or rate not in RATES:
        raise AudioFormatError(f"{path}: unsupported WAV format (format tag {tag}, {bits} bit, {channels} channel(s), "
                               f"{rate} Hz); want mono PCM16 / μ-law / A-law at 8000 or 16000 Hz; {FIX}")
    if kind == "pcm16":
        samples = np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2").astype(np.int16)
    else:
        samples = (MULAW if kind == "mulaw" else ALAW)[np.frombuffer(body, dtype=np.uint8)]
    if len(samples) == 0:
        raise AudioFormatError(f"{path}: WAV holds no audio (empty data chunk)")
    return samples, rate


def to_model_rate(pcm: np.ndarray | bytes, rate: int) -> np.ndarray:
    """float32 in [-1, 1] at 16 kHz from PCM16 (int16 array or bytes) at ``rate``."""
    if isinstance(pcm, bytes | bytearray | memoryview):
        pcm = np.frombuffer(pcm, dtype="<i2")
    audio = np.asarray(pcm, dtype=np.float32) / 32768.0
    if rate == MODEL_RATE:
        return audio
    if rate not in RATES:
        raise ValueError(f"sample rate {rate} Hz; want one of {RATES}")
    return soxr.resample(audio, rate, MODEL_RATE, quality="HQ").astype(np.float32)


def frames(pcm: np.ndarray, rate: int, frame_ms: int = 20) -> list[bytes]:
    """Split PCM16 samples into frames of ``frame_ms`` (the last one zero-padded), as a media port delivers them."""
    n = rate * frame_ms // 1000
    pad = (-len(pcm)) % n
    pcm = np.concatenate([pcm.astype("<i2"), np.zeros(pad, dtype="<i2")])
    return [pcm[i:i + n].tobytes() for i in range(0, len(pcm), n)]
