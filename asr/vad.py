"""Voice activity detection and endpointing on PCM16 frames (8 or 16 kHz, typically 20 ms).

Silero VAD v6 (the ONNX model inside the faster-whisper wheel) runs on 512-sample windows of 16 kHz
audio (32 ms), carrying its recurrent state from window to window; 8 kHz frames are resampled with a
streaming soxr resampler first. ``Endpointer`` turns the per-frame decisions into utterances:
speech start (after ``min_speech_ms`` of speech), end (after ``end_silence_ms`` of silence), a hard
cut at ``max_utterance_s``, and a no-input timeout.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import soxr

from asr.audio import MODEL_RATE, RATES
from asr.leveling import StreamingAgc
from asr.settings import EndpointSettings

WINDOW = 512  # Silero v6 at 16 kHz
DIGITAL_SILENCE = 16  # peak sample value below which a frame is line silence, not room noise
DITHER = 16
CONTEXT = 64


@lru_cache(maxsize=1)
def _session():
    from faster_whisper.vad import get_vad_model

    return get_vad_model().session  # one ONNX session (1 thread); state is per SileroVad


class SileroVad:
    """Streaming speech probability: ``push(frame)`` -> probabilities of the windows it completed."""

    def __init__(self, rate: int) -> None:
        if rate not in RATES:
            raise ValueError(f"sample rate {rate} Hz; want one of {RATES}")
        self.rate = rate
        # soxr's default (HQ) hands its output over in ~100 ms blocks, so every speech end was heard ~0.1 s late;
        # the quick cubic filter passes each frame on at once, and Silero does not need more for 8 kHz speech
        self._resampler = None if rate == MODEL_RATE else soxr.ResampleStream(rate, MODEL_RATE, 1, dtype="float32",
                                                                              quality="QQ")
        self._buf = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self.last_prob = 0.0

    def reset(self) -> None:
        """Forget the recurrent state (after digital silence it would delay the next onset)."""
        self._context[:] = 0.0
        self._h[:] = 0.0
        self._c[:] = 0.0
        self._buf = np.zeros(0, dtype=np.float32)
        self.last_prob = 0.0

    def push(self, frame: bytes | np.ndarray) -> list[float]:
        pcm = np.frombuffer(frame, dtype="<i2") if isinstance(frame, bytes | bytearray) else frame
        audio = np.asarray(pcm, dtype=np.float32) / 32768.0
        if self._resampler is not None:
            audio = self._resampler.resample_chunk(audio)
        self._buf = np.concatenate([self._buf, audio])
        probs = []
        while len(self._buf) >= WINDOW:
            win, self._buf = self._buf[:WINDOW], self._buf[WINDOW:]
            x = np.concatenate([self._context, win])[None, :]
            out, self._h, self._c = _session().run(None, {"input": x, "h": self._h, "c": self._c})
            self._context = win[-CONTEXT:]
            self.last_prob = float(np.asarray(out).reshape(-1)[0])
            probs.append(self.last_prob)
        return probs


def speech_probs(audio16k: np.ndarray) -> np.ndarray:
    """Silero's speech probability for each 512-sample window (32 ms) of 16 kHz float audio."""
    if len(audio16k) < WINDOW:
        return np.zeros(0, dtype=np.float32)
    vad = SileroVad(MODEL_RATE)
    pcm = np.clip(audio16k * 32768.0, -32768, 32767).astype(np.int16)
    return np.asarray(vad.push(pcm), dtype=np.float32)


def speech_seconds(audio16k: np.ndarray, threshold: float = 0.5) -> float:
    """Seconds of 16 kHz float audio that Silero calls speech (windows above ``threshold``)."""
    return float((speech_probs(audio16k) > threshold).sum()) * WINDOW / MODEL_RATE


@dataclass(frozen=True, slots=True)
class Utterance:
    pcm: np.ndarray  # int16 at the session rate, pre-roll included
    rate: int
    start_s: float  # audio time of the first sample in pcm
    speech_end_s: float  # audio time the last speech frame ended
    endpoint_s: float  # audio time the endpoint was declared (speech_end_s + end silence, or the cut)
    cut: bool  # True when max_utterance_s cut it


class Endpointer:
    """Frame-by-frame utterance detection. ``push(frame)`` returns ("onset", t) (``barge_in_ms`` of speech: maybe
    an utterance), ("start", t), ("end", Utterance), ("no_input", t) or None."""

    def __init__(self, rate: int, settings: EndpointSettings | None = None, vad: SileroVad | None = None) -> None:
        self.s = settings or EndpointSettings()
        self.rate = rate
        self.vad = vad or SileroVad(rate)
        self.t = 0.0  # audio time after the last pushed frame
        self._speaking_prob = False
        self._pre: deque[np.ndarray] = deque()
        self._pre_len = 0
        self._utt: list[np.ndarray] = []
        self._utt_start = 0.0
        self._run_speech = 0.0  # current run of speech frames (s)
        self._silence = 0.0  # current run of silence frames inside an utterance (s)
        self._last_speech_end = 0.0
        self.in_speech = False
        self._no_input_armed = True
        self._idle_since = 0.0
        self._onset_told = False
        self._rng = np.random.default_rng(12368)
        self.agc = StreamingAgc()  # the VAD hears quiet callers at a normal level

    def reset_no_input(self) -> None:
        """Start the no-input timer again (e.g. when a prompt finishes playing)."""
        self._no_input_armed = True
        self._idle_since = self.t

    def push(self, frame: bytes | np.ndarray):
        pcm = np.frombuffer(frame, dtype="<i2") if isinstance(frame, bytes | bytearray) else np.asarray(frame)
        dur = len(pcm) / self.rate
        # Exact digital silence (a line with no RTP, or PLC) is outside what Silero was trained on: after
        # seconds of it the model lagged the next onset by over a second on real calls. A faint noise
        # floor (about -66 dBFS, what any analogue line has) keeps it in its normal regime.
        vad_in = self.agc.process(pcm)
        if len(pcm) and int(np.abs(pcm).max()) < DIGITAL_SILENCE:
            vad_in = pcm + self._rng.integers(-DITHER, DITHER + 1, len(pcm)).astype(np.int16)
        probs = self.vad.push(vad_in) or [self.vad.last_prob]
        # hysteresis (as Silero's own get_speech_timestamps), window by window: speech begins at a probability
        # above the threshold and goes on until it falls 0.15 below it
        flags = []
        for p in probs:
            self._speaking_prob = p > (self.s.vad_threshold - 0.15 if self._speaking_prob else self.s.vad_threshold)
            flags.append(self._speaking_prob)
        # a chunk of several windows (the IVR sends 100 ms) counts as speech if any window is; its silent
        # windows after the last speech count as silence already, so the end is not late by up to a chunk
        is_speech = any(flags)
        tail_s = min(dur, flags[::-1].index(True) * WINDOW / MODEL_RATE) if is_speech else 0.0
        t0, self.t = self.t, self.t + dur
        if not self.in_speech:
            self._pre.append(pcm)
            self._pre_len += len(pcm)
            keep = int(self.rate * (self.s.pre_roll_ms / 1000 + self.s.min_speech_ms / 1000)) + len(pcm)
            while self._pre and self._pre_len - len(self._pre[0]) >= keep:
                self._pre_len -= len(self._pre.popleft())
            self._run_speech = self._run_speech + dur if is_speech else 0.0
            if not is_speech:
                self._onset_told = False
            if self._run_speech * 1000 >= self.s.min_speech_ms:
                self._onset_told = False
                self.in_speech = True
                self._no_input_armed = False
                self._utt = list(self._pre)
                self._utt_start = self.t - self._pre_len / self.rate
                self._pre.clear()
                self._pre_len = 0
                self._silence = 0.0
                self._last_speech_end = self.t
                return ("start", max(0.0, self.t - self._run_speech))
            if self.s.barge_in_ms and not self._onset_told and self._run_speech * 1000 >= self.s.barge_in_ms:
                self._onset_told = True  # maybe a caller talking over the prompt: the IVR holds it at once
                return ("onset", max(0.0, self.t - self._run_speech))
            if self._no_input_armed and self.t - self._idle_since >= self.s.no_input_timeout_s:
                self._no_input_armed = False
                return ("no_input", self.t)
            return None
        self._utt.append(pcm)
        if is_speech:
            self._silence = tail_s
            self._last_speech_end = self.t - tail_s
        else:
            self._silence += dur
        cut = self.t - self._utt_start >= self.s.max_utterance_s
        if self._silence * 1000 >= self.s.end_silence_ms or cut:
            return ("end", self._finish(cut=cut and self._silence * 1000 < self.s.end_silence_ms, at=t0 + dur))
        return None

    @property
    def silence_s(self) -> float:
        """The current run of silence inside an utterance (0 while the caller speaks)."""
        return self._silence if self.in_speech else 0.0

    @property
    def speech_end_s(self) -> float:
        """Audio time the last speech frame of the current utterance ended."""
        return self._last_speech_end

    def so_far(self) -> np.ndarray:
        """The utterance's audio as ``_finish`` would hand it over if it ended now (for early decodes)."""
        return self._trimmed(cut=False)

    def _trimmed(self, cut: bool) -> np.ndarray:
        # keep ~200 ms of the trailing silence (whisper likes a little), drop the rest
        tail = max(0, round(self.rate * (self._silence - 0.2)))
        pcm = np.concatenate(self._utt) if self._utt else np.zeros(0, dtype=np.int16)
        if tail and not cut:
            pcm = pcm[: len(pcm) - tail]
        return pcm

    def _finish(self, cut: bool, at: float) -> Utterance:
        pcm = self._trimmed(cut)
        utt = Utterance(pcm=pcm, rate=self.rate, start_s=self._utt_start, speech_end_s=self._last_speech_end,
                        endpoint_s=at, cut=cut)
        self.in_speech = False
        self._utt = []
        self._run_speech = 0.0
        self._silence = 0.0
        self._idle_since = at
        return utt
