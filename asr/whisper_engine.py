"""faster-whisper (whisper base, CTranslate2 int8) as a non-streaming recognizer of one utterance.

Decoding goes one level below ``WhisperModel.transcribe`` because that pads every input to a 30 s
encoder window: here the features are padded to ``window_s`` (10 s by default, ~3x cheaper, same CER
per notes/speech-findings.md), with the guard that short windows need — temperature 0 first and
``max_new_tokens ≈ 10 × seconds + 10`` — and at most ``len(temperatures)`` decodes. Text is gated
twice: no decode at all when Silero finds too little speech, and no text when whisper itself says
"no speech" (``no_speech_prob``/``avg_logprob``). Output is converted to Simplified Chinese.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asr.audio import MODEL_RATE, to_model_rate
from asr.errors import ModelError
from asr.models import verify_model_dir
from asr.settings import AsrSettings
from asr.vad import speech_seconds
from zh_text import to_simplified

FRAMES_PER_S = 100  # whisper mel frames per second


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    confidence: float
    audio_s: float
    decode_s: float
    info: dict[str, float | str] = field(default_factory=dict)  # avg_logprob, no_speech_prob, dropped, ...


def _bare(text: str) -> str:
    return re.sub(r"[\s\W_]+", "", text)


def _is_prompt_echo(text: str, prompt: str) -> bool:
    """Most of the text's character bigrams come from the prompt (whisper repeating its prompt)."""
    t, p = _bare(text), _bare(prompt)
    grams = [t[i:i + 2] for i in range(len(t) - 1)]
    return len(grams) >= 3 and sum(g in p for g in grams) >= 0.8 * len(grams)


def _compression_ratio(text: str) -> float:
    b = text.encode("utf-8")
    return len(b) / max(1, len(zlib.compress(b)))


class WhisperEngine:
    """Load once (``WhisperEngine(model_dir, settings)``); ``transcribe(pcm, rate)`` from any thread.

    Decodes are serialised by a lock: the model has one CPU replica, and two concurrent decodes on
    2 cores only slow each other down. Queueing/priorities belong to the caller (the speech service).
    """

    name = "whisper"

    def __init__(self, model_dir: Path, settings: AsrSettings | None = None) -> None:
        self.s = settings or AsrSettings()
        self.model_dir = Path(model_dir)
        verify_model_dir(self.model_dir, full=False)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        try:
            self.model = WhisperModel(str(self.model_dir), device="cpu", compute_type="int8",
                                      cpu_threads=self.s.cpu_threads, num_workers=1, local_files_only=True)
        except Exception as e:  # ctranslate2 raises RuntimeError/ValueError with its own text
            raise ModelError(f"{self.model_dir}: whisper model does not load ({e}); "
                             "run `hotline models install` to assemble it again") from None
        self.tokenizer = Tokenizer(self.model.hf_tokenizer, True, task="transcribe", language="zh")
        self._suppress = get_suppressed_tokens(self.tokenizer, [-1])
        prompt_tokens = self.tokenizer.encode(" " + self.s.initial_prompt.strip()) if self.s.initial_prompt else []
        self._prompt = self.model.get_prompt(self.tokenizer, prompt_tokens, without_timestamps=True)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ decoding

    def _features(self, audio: np.ndarray, window_frames: int) -> np.ndarray:
        feats = self.model.feature_extractor(audio, padding=160)  # (80, n_frames)
        feats = feats[:, :window_frames]
        if feats.shape[1] < window_frames:
            feats = np.pad(feats, ((0, 0), (0, window_frames - feats.shape[1])))
        return feats.astype(np.float32)

    def _generate(self, enc, n: int, max_new: int, temperature: float):
        kwargs = ({"beam_size": 1, "sampling_topk": 0, "sampling_temperature": temperature} if temperature > 0
                  else {"beam_size": self.s.beam_size})
        return self.model.model.generate(
            enc, [self._prompt] * n, max_length=len(self._prompt) + max_new, return_scores=True,
            return_no_speech_prob=True, suppress_blank=True, suppress_tokens=self._suppress,
            max_initial_timestamp_index=50, **kwargs)

    def _result(self, res) -> tuple[str, float, float]:
        tokens = [t for t in res.sequences_ids[0] if t < self.tokenizer.eot]
        avg_logprob = res.scores[0] * len(tokens) / (len(tokens) + 1)
        return self.tokenizer.decode(tokens).strip(), avg_logprob, res.no_speech_prob

    def transcribe_many(self, items: list[tuple[np.ndarray | bytes, int]]) -> list[Transcript]:
        """Decode several utterances as one batch (one encoder call, one batched beam search)."""
        t0 = time.perf_counter()
        window_s = self.s.window_s
        audios = [to_model_rate(pcm, rate) for pcm, rate in items]
        out: list[Transcript | None] = [None] * len(audios)
        todo = []
        for i, a in enumerate(audios):
            audio_s = len(a) / MODEL_RATE
            if speech_seconds(a, self.s.endpoint.vad_threshold - 0.15) * 1000 < self.s.endpoint.min_speech_ms:
                out[i] = Transcript("", 0.0, audio_s, time.perf_counter() - t0, {"dropped": "vad"})
            else:
                todo.append(i)
        if todo:
            with self._lock:
                t_dec = time.perf_counter()
                # one decode per window_s slice; utterances from the stream are never longer than one window
                chunks = [(i, audios[i][k:k + window_s * MODEL_RATE])
                          for i in todo for k in range(0, len(audios[i]), window_s * MODEL_RATE)]
                chunks = [(i, c) for i, c in chunks if len(c) >= MODEL_RATE // 10]
                feats = np.stack([self._features(c, window_s * FRAMES_PER_S) for _, c in chunks])
                from faster_whisper.transcribe import get_ctranslate2_storage

                enc = self.model.model.encode(get_ctranslate2_storage(feats), to_cpu=False)
                max_new = min(int(10 * max(len(c) for _, c in chunks) / MODEL_RATE) + 10, 200)
                results = [self._result(r) for r in self._generate(enc, len(chunks), max_new, self.s.temperatures[0])]
                for temperature in self.s.temperatures[1:]:  # bounded retries, for repetitive output only
                    redo = [k for k, (text, _, _) in enumerate(results) if _compression_ratio(text) > 2.4]
                    if not redo:
                        break
                    enc1 = self.model.model.encode(get_ctranslate2_storage(feats[redo]), to_cpu=False)
                    for k, r in zip(redo, self._generate(enc1, len(redo), max_new, temperature), strict=True):
                        results[k] = self._result(r)
                decode_s = time.perf_counter() - t_dec
            per: dict[int, list[tuple[str, float, float]]] = {}
            for (i, _), r in zip(chunks, results, strict=True):
                per.setdefault(i, []).append(r)
            for i in todo:
                parts = [self._gate(*r) for r in per.get(i, [])]
                text = to_simplified("".join(p[0] for p in parts))
                lp = [p[1] for p in parts] or [-10.0]
                nsp = max((p[2] for p in parts), default=1.0)
                out[i] = Transcript(text, round(math.exp(min(0.0, sum(lp) / len(lp))), 3) if text else 0.0,
                                    len(audios[i]) / MODEL_RATE, time.perf_counter() - t0,
                                    {"avg_logprob": round(sum(lp) / len(lp), 3), "no_speech_prob": round(nsp, 3),
                                     "model_s": round(decode_s, 3), "batch": len(chunks)})
        return [o for o in out if o is not None]

    def _gate(self, text: str, avg_logprob: float, no_speech_prob: float) -> tuple[str, float, float]:
        silent = no_speech_prob > self.s.no_speech_threshold and avg_logprob < self.s.logprob_threshold
        # whisper's classic hallucination on non-speech is to echo its prompt
        echo = _is_prompt_echo(text, self.s.initial_prompt)
        if silent or echo or avg_logprob < self.s.min_avg_logprob:
            return "", avg_logprob, no_speech_prob
        return text, avg_logprob, no_speech_prob

    def transcribe(self, pcm: np.ndarray | bytes, rate: int) -> Transcript:
        """Text of one utterance (PCM16 at 8 or 16 kHz); "" for silence and noise."""
        return self.transcribe_many([(pcm, rate)])[0]
