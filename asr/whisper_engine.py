"""faster-whisper (whisper base, CTranslate2 int8 by default) as a non-streaming recognizer of one utterance.

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
import soxr

from asr.audio import MODEL_RATE, to_model_rate
from asr.digit_reader import DigitReader
from asr.errors import ModelError
from asr.leveling import level
from asr.models import verify_model_dir
from asr.numbers import DIGIT_TEMPOS, PAD_S, PROMPTS, Expect, allowed_tokens, fits, interpret, unleak
from asr.repetition import cut_loop
from asr.segment import split_at_pauses
from asr.settings import AsrSettings
from asr.vad import WINDOW, speech_probs
from zh_text import to_simplified

FRAMES_PER_S = 100  # whisper mel frames per second
ENCODER_FPS = 50  # encoder output frames per second (the encoder halves the mel rate)
#: a spoken number's beam hypotheses that vote (its reading was tuned with 5, whatever ``asr.beam_size`` says)
NUMBER_HYPOTHESES = 5


def _padded(audio: np.ndarray) -> np.ndarray:
    """A number's audio with the silence before and after it that its decode wants (``asr.numbers.PAD_S``)."""
    before, after = (np.zeros(int(s * MODEL_RATE), dtype=np.float32) for s in PAD_S)
    return np.concatenate([before, audio, after])


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    confidence: float
    audio_s: float
    decode_s: float
    info: dict[str, float | str] = field(default_factory=dict)  # avg_logprob, no_speech_prob, dropped, ...
    alternatives: tuple[str, ...] = ()  # the next beam hypotheses, best first (when asked for; one window only)


def _bare(text: str) -> str:
    return re.sub(r"[\s\W_]+", "", text)


def _is_prompt_echo(text: str, prompt: str) -> bool:
    """Most of the text's character bigrams come from the prompt (whisper repeating its prompt)."""
    t, p = _bare(text), _bare(prompt)
    grams = [t[i:i + 2] for i in range(len(t) - 1)]
    return len(grams) >= 3 and sum(g in p for g in grams) >= 0.8 * len(grams)


def _tempo(audio: np.ndarray, factor: float) -> np.ndarray:
    """``audio`` played ``factor`` times longer (resampled: pitch moves too, which whisper tolerates)."""
    if factor == 1.0:
        return audio
    return soxr.resample(audio, MODEL_RATE, int(MODEL_RATE * factor)).astype(np.float32)


def _unleak(text: str, expect: Expect) -> str:
    """Only a digits-only decode composes stray characters from numeral bytes (a case number is free text)."""
    return unleak(text) if expect == "digits" else text


def _compression_ratio(text: str) -> float:
    b = text.encode("utf-8")
    return len(b) / max(1, len(zlib.compress(b)))


class WhisperEngine:
    """Load once (``WhisperEngine(model_dir, settings)``); ``transcribe(pcm, rate)`` from any thread.

    The model has ``decode_lanes`` CPU replicas of ``cpu_threads`` threads each, and at most that many decodes run
    at once (more would only slow each other down). Queueing/priorities belong to the caller (the speech service).
    """

    name = "whisper"

    def __init__(self, model_dir: Path, settings: AsrSettings | None = None) -> None:
        self.s = settings or AsrSettings()
        self.model_dir = Path(model_dir)
        verify_model_dir(self.model_dir, full=False)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_ctranslate2_storage, get_suppressed_tokens

        try:
            self.model = WhisperModel(str(self.model_dir), device="cpu", compute_type=self.s.compute_type,
                                      cpu_threads=self.s.cpu_threads, num_workers=self.s.decode_lanes,
                                      local_files_only=True)
        except Exception as e:  # ctranslate2 raises RuntimeError/ValueError with its own text
            raise ModelError(f"{self.model_dir}: whisper model does not load ({e}); "
                             "run `hotline models install` to assemble it again") from None
        self.tokenizer = Tokenizer(self.model.hf_tokenizer, True, task="transcribe", language="zh")
        self._suppress = get_suppressed_tokens(self.tokenizer, [-1])
        prompt_tokens = self.tokenizer.encode(" " + self.s.initial_prompt.strip()) if self.s.initial_prompt else []
        self._prompt = self.model.get_prompt(self.tokenizer, prompt_tokens, without_timestamps=True)
        self._storage = get_ctranslate2_storage
        self._expect_cache: dict[str, tuple[list[int], list[int]]] = {}
        self._lanes = threading.BoundedSemaphore(self.s.decode_lanes)  # one decode per model replica
        self.digit_tempos: tuple[float, ...] = DIGIT_TEMPOS  # tempos whose n-best lists vote on a digit string
        self.digit_reader = DigitReader() if self.s.digit_reader else None

    # ------------------------------------------------------------------ decoding

    def _features(self, audio: np.ndarray, window_frames: int, pad_audio: bool = False) -> np.ndarray:
        """Log-mel features of one window. ``pad_audio`` pads with silent audio (as whisper was trained)
        rather than zero features, which read as sound; number decodes use it (codes 5/8 → 6/8)."""
        if pad_audio:
            n = window_frames * MODEL_RATE // FRAMES_PER_S
            audio = np.concatenate([audio, np.zeros(max(0, n - len(audio)), dtype=np.float32)])[:n]
        feats = self.model.feature_extractor(audio, padding=0 if pad_audio else 160)  # (80, n_frames)
        feats = feats[:, :window_frames]
        if feats.shape[1] < window_frames:
            mode = "edge" if pad_audio else "constant"
            feats = np.pad(feats, ((0, 0), (0, window_frames - feats.shape[1])), mode=mode)
        return feats.astype(np.float32)

    def _generate(self, enc, n: int, max_new: int, prompt: list[int], suppress: list[int], temperature: float,
                  hypotheses: int = 1, beam: int | None = None):
        kwargs = ({"beam_size": 1, "sampling_topk": 0, "sampling_temperature": temperature} if temperature > 0
                  else {"beam_size": max(beam or self.s.beam_size, hypotheses), "num_hypotheses": hypotheses})
        return self.model.model.generate(
            enc, [prompt] * n, max_length=len(prompt) + max_new, return_scores=True,
            return_no_speech_prob=True, suppress_blank=True, suppress_tokens=suppress,
            max_initial_timestamp_index=50, **kwargs)

    def _result(self, res, k: int = 0) -> tuple[str, float, float]:
        tokens = [t for t in res.sequences_ids[k] if t < self.tokenizer.eot]
        avg_logprob = res.scores[k] * len(tokens) / (len(tokens) + 1)
        return self.tokenizer.decode(tokens).strip(), avg_logprob, res.no_speech_prob

    def _number(self, text: str, expect: Expect) -> str:
        return interpret(_unleak(cut_loop(to_simplified(text), digits=True)[0], expect), expect)

    def _pick(self, res, expect: Expect, length: int | None) -> tuple[str, float, float]:
        """The first beam hypothesis that reads as the expected number (else the best one)."""
        for k in range(len(res.sequences_ids)):
            text, lp, nsp = self._result(res, k)
            if fits(self._number(text, expect), expect, length):
                return text, lp, nsp
        return self._result(res)

    def _vote(self, views: list, expect: Expect, length: int | None) -> tuple[str, float, float]:
        """The number most hypotheses of the expected length agree on, over the views of one number
        (the audio at several tempos): hypothesis k of n gives n - k votes, once per view. One view
        (or no hypothesis of the length) falls back to ``_pick`` of the plain audio."""
        if len(views) == 1 or length is None:
            return self._pick(views[0], expect, length)
        votes: dict[str, int] = {}
        first: dict[str, tuple[str, float, float]] = {}
        for res in views:
            n, seen = len(res.sequences_ids), set()
            for k in range(n):
                text, lp, nsp = self._result(res, k)
                value = self._number(text, expect)
                if fits(value, expect, length) and value not in seen:
                    seen.add(value)
                    votes[value] = votes.get(value, 0) + n - k
                    first.setdefault(value, (text, lp, nsp))
        if not votes:
            return self._pick(views[0], expect, length)
        return first[max(votes, key=votes.__getitem__)]  # ties: the plain audio's order

    def _expect_options(self, expect: Expect) -> tuple[list[int], list[int]]:
        """Prompt and suppressed tokens for a decode that expects a number (built once per kind)."""
        if expect not in self._expect_cache:
            allowed = allowed_tokens(self.tokenizer.encode, expect)
            suppress = list(self._suppress) if allowed is None else sorted(
                set(self._suppress) | {t for t in range(self.tokenizer.eot) if t not in allowed})
            words = self.tokenizer.encode(" " + PROMPTS[expect]) if PROMPTS[expect] else []
            prompt = self.model.get_prompt(self.tokenizer, words, without_timestamps=True)
            self._expect_cache[expect] = (prompt, suppress)
        return self._expect_cache[expect]

    def transcribe_many(self, items: list[tuple[np.ndarray | bytes, int]], expect: Expect | None = None,
                        length: int | None = None, alternatives: int = 0, reader: bool = True,
                        beam_size: int | None = None) -> list[Transcript]:
        """Decode several utterances as one batch (one encoder call, one batched beam search).

        Each utterance is leveled (AGC), gated by VAD and, when longer than the encoder window, cut at
        pauses into windows that are decoded in order. ``expect`` restricts the text to a number
        (``asr.numbers``): the text returned is then the digits (``length`` of them preferred) or the
        canonical case number, "" when none was heard; ``info["heard"]`` keeps what whisper wrote.
        ``alternatives`` (free text): up to that many next beam hypotheses of a one-window utterance come back
        too (n-best, at no extra cost: the beam holds them), for a dialogue that expects one of a few replies.
        ``beam_size`` (free text without alternatives) overrides the setting, e.g. 1 for a partial re-decode.
        Digit strings are read by the digit reader (``asr.digit_reader``) from the encoder's frames when it
        is on; whisper's decoder reads only what does not fit one window.
        """
        if expect == "digits" and reader and self.digit_reader is not None:
            return self._read_digits(items, length)
        t0 = time.perf_counter()
        window_s = self.s.window_s
        leveled = [level(to_model_rate(pcm, rate)) for pcm, rate in items]
        audios = [a if expect is None else _padded(a) for a, _ in leveled]
        out: list[Transcript | None] = [None] * len(audios)
        chunks: list[tuple[int, np.ndarray]] = []
        vad_s = 0.0
        for i, a in enumerate(audios):
            audio_s = len(a) / MODEL_RATE
            tv = time.perf_counter()
            probs = speech_probs(a)
            vad_s += time.perf_counter() - tv
            if self._too_little_speech(probs):
                out[i] = Transcript("", 0.0, audio_s, time.perf_counter() - t0, {"dropped": "vad"})
                continue
            ranges = split_at_pauses(len(a), probs, window_s, self.s.endpoint.min_speech_ms / 1000,
                                     self.s.endpoint.vad_threshold)
            chunks += [(i, a[b:e]) for b, e in ranges if e - b >= MODEL_RATE // 10]
        todo = sorted({i for i, _ in chunks})
        for i in range(len(audios)):
            if out[i] is None and i not in todo:
                out[i] = Transcript("", 0.0, len(audios[i]) / MODEL_RATE, time.perf_counter() - t0, {"dropped": "vad"})
        if todo:
            prompt, suppress = (self._prompt, self._suppress) if expect is None else self._expect_options(expect)
            short = self.s.short_window_s
            if expect is None and 0 < short < window_s and max(len(c) for _, c in chunks) <= (short - 1) * MODEL_RATE:
                window_s = short  # the encoder's cost goes with its window
            with self._lanes:
                t_dec = time.perf_counter()
                # a digit string of known length is decoded at several tempos and the hypotheses vote
                tempos = self.digit_tempos if expect == "digits" and length else (1.0,)
                fit = (window_s - 0.3) * MODEL_RATE  # a view slowed past the window would lose its end
                views = [_tempo(c, f if len(c) * f <= fit else 1.0) for _, c in chunks for f in tempos]
                feats = np.stack([self._features(v, window_s * FRAMES_PER_S, pad_audio=expect is not None)
                                  for v in views])
                enc = self.model.model.encode(self._storage(feats), to_cpu=False)
                max_new = min(int(10 * max(len(v) for v in views) / MODEL_RATE) + 10, 200)
                gen = (enc, len(views), max_new, prompt, suppress)
                nbest: list[list[tuple[str, float, float]]] = []
                if expect is None and alternatives:
                    hyps = self._generate(*gen, self.s.temperatures[0], hypotheses=1 + alternatives)
                    nbest = [[self._result(r, k) for k in range(len(r.sequences_ids))] for r in hyps]
                    results = [n[0] for n in nbest]
                elif expect is None:
                    results = [self._result(r) for r in self._generate(*gen, self.s.temperatures[0], beam=beam_size)]
                else:
                    hyps = self._generate(*gen, 0.0, hypotheses=NUMBER_HYPOTHESES)
                    m = len(tempos)
                    results = [self._vote(hyps[k * m:(k + 1) * m], expect, length) for k in range(len(chunks))]
                for temperature in self.s.temperatures[1:]:  # bounded retries, for repetitive output only
                    redo = [k for k, (text, _, _) in enumerate(results) if _compression_ratio(text) > 2.4]
                    if not redo:
                        break
                    enc1 = self.model.model.encode(self._storage(feats[[k * len(tempos) for k in redo]]),
                                                   to_cpu=False)
                    for k, r in zip(redo, self._generate(enc1, len(redo), max_new, prompt, suppress, temperature),
                                    strict=True):
                        results[k] = self._result(r)
                decode_s = time.perf_counter() - t_dec
            per: dict[int, list[tuple[str, float, float]]] = {}
            for (i, _), r in zip(chunks, results, strict=True):
                per.setdefault(i, []).append(r)
            others: dict[int, list[tuple[str, float, float]]] = {}
            for k, (i, _) in enumerate(chunks):
                if nbest and len(per[i]) == 1:
                    others[i] = nbest[k][1:]
            for i in todo:
                parts = [self._gate(*r, prompt_text=PROMPTS[expect] if expect else self.s.initial_prompt)
                         for r in per[i]]
                loops = 0
                texts = []
                for p in parts:  # the repetition guard works per window: a loop ends that window's text
                    t, cut = cut_loop(to_simplified(p[0]), digits=expect is not None)
                    loops += cut
                    texts.append(t)
                text = "".join(texts)
                raw = text
                if expect is not None:
                    text = interpret(_unleak(text, expect), expect) if text else ""
                lp = [p[1] for p in parts] or [-10.0]
                nsp = max((p[2] for p in parts), default=1.0)
                info: dict[str, float | str] = {
                    "avg_logprob": round(sum(lp) / len(lp), 3), "no_speech_prob": round(nsp, 3),
                    "model_s": round(decode_s, 3), "vad_s": round(vad_s, 3), "batch": len(chunks),
                    "windows": len(parts), "window_s": window_s, "gain_db": round(leveled[i][1], 1), "loops_cut": loops}
                if expect is not None:
                    info.update(expect=expect, heard=raw)
                alts = [cut_loop(to_simplified(a[0]), digits=False)[0]
                        for a in (self._gate(*h, prompt_text=self.s.initial_prompt) for h in others.get(i, []))]
                out[i] = Transcript(text, round(math.exp(min(0.0, sum(lp) / len(lp))), 3) if text else 0.0,
                                    len(audios[i]) / MODEL_RATE, time.perf_counter() - t0, info,
                                    tuple(dict.fromkeys(a for a in alts if a and a != text)))
        return [o for o in out if o is not None]

    def _too_little_speech(self, probs: np.ndarray) -> bool:
        """VAD says less speech than an utterance needs (a click, a breath, the line)."""
        speech = float((probs > self.s.endpoint.vad_threshold - 0.15).sum()) * WINDOW / MODEL_RATE
        return speech * 1000 < self.s.endpoint.min_speech_ms

    def _number_audio(self, pcm: np.ndarray | bytes, rate: int) -> np.ndarray:
        """A number's audio as its decode sees it: leveled, with the silence pad around it."""
        return _padded(level(to_model_rate(pcm, rate))[0])

    def _encode_frames(self, audios: list[np.ndarray]) -> list[np.ndarray]:
        """The encoder's output frames (50 a second) covering each audio (at most one window)."""
        window = self.s.window_s * FRAMES_PER_S
        feats = np.stack([self._features(a, window, pad_audio=True) for a in audios])
        with self._lanes:
            enc = np.asarray(self.model.model.encode(self._storage(feats), to_cpu=True), dtype=np.float32)
        return [enc[k, :min(enc.shape[1], math.ceil(len(a) / MODEL_RATE * ENCODER_FPS) + 2)]
                for k, a in enumerate(audios)]

    def digit_frames(self, pcm: np.ndarray | bytes, rate: int) -> np.ndarray:
        """Encoder frames of a spoken number (what the digit reader reads), shape (frames, d_model)."""
        return self._encode_frames([self._number_audio(pcm, rate)])[0]

    def _read_digits(self, items: list[tuple[np.ndarray | bytes, int]], length: int | None) -> list[Transcript]:
        """Digit strings read from the encoder's frames (one encoder call for the batch, no decoder)."""
        assert self.digit_reader is not None
        t0 = time.perf_counter()
        audios = [self._number_audio(pcm, rate) for pcm, rate in items]
        out: list[Transcript | None] = [None] * len(audios)
        fit = (self.s.window_s - 0.3) * MODEL_RATE
        mine = []
        for i, a in enumerate(audios):
            if self._too_little_speech(speech_probs(a)):
                out[i] = Transcript("", 0.0, len(a) / MODEL_RATE, time.perf_counter() - t0, {"dropped": "vad"})
            elif len(a) <= fit:
                mine.append(i)
        if mine:
            t_enc = time.perf_counter()
            frames = self._encode_frames([audios[i] for i in mine])
            model_s = time.perf_counter() - t_enc
            for i, f in zip(mine, frames, strict=True):
                r = self.digit_reader.read(f, length)
                info: dict[str, float | str] = {"expect": "digits", "heard": r.free, "reader": "ctc",
                                                "entropy": r.entropy, "model_s": round(model_s, 3), "batch": len(mine)}
                if r.free and not r.digits:
                    info["dropped"] = "not a number"
                out[i] = Transcript(r.digits, r.confidence, len(audios[i]) / MODEL_RATE,
                                    time.perf_counter() - t0, info)
        rest = [k for k, o in enumerate(out) if o is None]  # longer than a window: whisper's windows
        if rest:
            for k, tr in zip(rest, self.transcribe_many([items[k] for k in rest], "digits", length, reader=False),
                             strict=True):
                out[k] = tr
        return [o for o in out if o is not None]

    def _gate(self, text: str, avg_logprob: float, no_speech_prob: float,
              prompt_text: str = "") -> tuple[str, float, float]:
        silent = no_speech_prob > self.s.no_speech_threshold and avg_logprob < self.s.logprob_threshold
        # whisper's classic hallucination on non-speech is to echo its prompt
        echo = _is_prompt_echo(text, prompt_text)
        if silent or echo or avg_logprob < self.s.min_avg_logprob:
            return "", avg_logprob, no_speech_prob
        return text, avg_logprob, no_speech_prob

    def transcribe(self, pcm: np.ndarray | bytes, rate: int, expect: Expect | None = None,
                   length: int | None = None, alternatives: int = 0) -> Transcript:
        """Text of one utterance (PCM16 at 8 or 16 kHz); "" for silence and noise."""
        return self.transcribe_many([(pcm, rate)], expect, length, alternatives)[0]
