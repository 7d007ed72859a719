"""Automatic gain control: bring a caller's speech to one loudness before VAD and recognition.

Whisper's log-mel features are not level-invariant (they are clamped 8 decades below the loudest
bin, then shifted by a constant), and Silero hears quiet speech less often: a real telephone clip at
about −38 dBFS peak came back mostly wrong. ``level`` works on a whole utterance (the recognizer's
input); ``StreamingAgc`` follows a live call frame by frame for the endpointer's VAD.
"""

from __future__ import annotations

import numpy as np

TARGET_DBFS = -20.0  # RMS of the loud half of the speech frames after leveling
MAX_GAIN_DB = 30.0  # a line that needs more than this holds no usable speech
MIN_GAIN_DB = -12.0
FLOOR_DBFS = -62.0  # frames quieter than this are line noise, not speech: they never set the gain
PEAK = 0.95
FRAME = 320  # 20 ms at 16 kHz


def _db(x: np.ndarray | float) -> np.ndarray | float:
    return 20 * np.log10(np.maximum(x, 1e-9))


def level(audio: np.ndarray) -> tuple[np.ndarray, float]:
    """``audio`` (float32, [-1, 1], 16 kHz) with DC removed and its speech at TARGET_DBFS; and the gain in dB.

    The level is the mean RMS of the louder half of the frames above FLOOR_DBFS, so pauses and line
    noise do not pull it down. Silence and DC stay silent (no frame above the floor: gain 0 dB).
    """
    if len(audio) == 0:
        return audio, 0.0
    x = audio.astype(np.float32) - np.float32(audio.mean())
    n = len(x) // FRAME
    if n == 0:
        return x, 0.0
    rms = np.sqrt(np.mean(x[: n * FRAME].reshape(n, FRAME) ** 2, axis=1))
    loud = rms[_db(rms) > FLOOR_DBFS]
    if len(loud) == 0:
        return x, 0.0
    top = np.sort(loud)[len(loud) // 2:]
    gain_db = float(np.clip(TARGET_DBFS - _db(float(np.sqrt(np.mean(top ** 2)))), MIN_GAIN_DB, MAX_GAIN_DB))
    # never clip more than the loudest 0.1 % of samples (plosives)
    peak = float(np.quantile(np.abs(x), 0.999))
    if peak > 0:
        gain_db = min(gain_db, float(_db(PEAK / peak)))
    y = x * np.float32(10 ** (gain_db / 20))
    return np.clip(y, -1.0, 1.0), gain_db


class StreamingAgc:
    """Gain for live PCM16 frames: follows the loudness of the caller's voiced frames (fast up, slow down).

    Starts at unity (the level assumed at the target, so the first syllables of a normal caller are
    not pumped up and distorted); frames below FLOOR_DBFS do not move it (line noise is never pumped up
    to speech level); a frame is never amplified into clipping.
    """

    def __init__(self, attack: float = 0.3, release: float = 0.03) -> None:
        self.level_db: float | None = TARGET_DBFS
        self.attack, self.release = attack, release

    @property
    def gain(self) -> float:
        if self.level_db is None:
            return 1.0
        return float(10 ** (np.clip(TARGET_DBFS - self.level_db, 0.0, MAX_GAIN_DB) / 20))

    def process(self, pcm: np.ndarray) -> np.ndarray:
        if len(pcm) == 0:
            return pcm
        x = pcm.astype(np.float32)
        frame_db = float(_db(float(np.sqrt(np.mean((x - x.mean()) ** 2))) / 32768.0))
        if frame_db > FLOOR_DBFS:
            if self.level_db is None:
                self.level_db = frame_db
            else:
                k = self.attack if frame_db > self.level_db else self.release
                self.level_db += k * (frame_db - self.level_db)
        g = min(self.gain, 32000.0 / max(1.0, float(np.abs(x).max())))
        if g <= 1.0:
            return pcm
        return (x * g).astype(np.int16)
