"""Spoken digit strings read from whisper's encoder frames by a small CTC network (issue 14, part 5).

Whisper's decoder writes digit strings badly: it drops a leading 幺 and collapses runs (七七七 → 七七).
The encoder hears them well enough, so a network of ~0.2 M weights over its frames (a projection, two
convolutions of 5 frames = 180 ms of context, a softmax over blank and 0-9) spells the digits instead;
CTC's blank between frames keeps a run of one digit apart. Fitted by scripts/fit_digit_reader.py on
rendered clips (scripts/render_digit_train.py); the weights ship in asr/data/digit_reader.npz and run here
with numpy (~1 ms a number). When the number's length is known (11 for a mobile), the best path with
exactly that many digits is read (a Viterbi over the CTC lattice), so one unclear digit costs that digit,
not the whole number. Speech that is not a number (the network never heard any) comes out as a few
confident digits between unsure frames; the mean entropy of the frames between the first and the last digit
tells the two apart (``MAX_SPAN_ENTROPY``), and such speech reads as nothing.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.errors import ModelError

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "digit_reader.npz"
VERSION = 1
BLANK = 0
SLACK = 2  # a free reading this many digits off the expected length is fitted to it; further off, it is left
# Fitted by scripts/fit_digit_rejection.py (logistic regression, leave-one-out accuracy 0.97) on the 50 tuning
# sentences vs the 26 tuning numbers of tests/data/speech_turns; the held-out figures are in the README.
MAX_SPAN_ENTROPY = 0.057
WEIGHTS = ("mean", "std", "proj_w", "proj_b", "conv1_w", "conv1_b", "conv2_w", "conv2_b", "out_w", "out_b")


@dataclass(frozen=True, slots=True)
class DigitReading:
    digits: str
    confidence: float  # the geometric mean of the chosen path's per-digit peak probabilities
    free: str  # the unconstrained (greedy) reading
    entropy: float  # mean entropy (nats) of the frames from the first to the last digit; high: not a number


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A 'same' 1-D convolution: x (T, in), w (k, in, out) as Keras stores it."""
    k = w.shape[0]
    xp = np.pad(x, ((k // 2, k - 1 - k // 2), (0, 0)))
    out = np.broadcast_to(b, (len(x), w.shape[2])).copy()
    for j in range(k):
        out += xp[j:j + len(x)] @ w[j]
    return out


class DigitReader:
    """Load once; ``read(frames, length)`` from any thread (numpy only, no state)."""

    def __init__(self, path: Path = DEFAULT_PATH) -> None:
        try:
            with np.load(path) as d:
                if int(d["version"]) != VERSION:
                    raise ModelError(f"{path}: digit reader version {int(d['version'])}, expected {VERSION}")
                self.w = {k: d[k].astype(np.float32) for k in WEIGHTS}
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
            raise ModelError(f"{path}: digit reader weights unreadable ({e}); reinstall the package") from None

    def log_probs(self, frames: np.ndarray) -> np.ndarray:
        """(T, 11) log-probabilities of blank and the digits 0-9 per encoder frame."""
        w = self.w
        x = (frames.astype(np.float32) - w["mean"]) / w["std"]
        h = np.maximum(x @ w["proj_w"] + w["proj_b"], 0)
        h = np.maximum(_conv(h, w["conv1_w"], w["conv1_b"]), 0)
        h = np.maximum(_conv(h, w["conv2_w"], w["conv2_b"]), 0)
        z = h @ w["out_w"] + w["out_b"]
        z -= z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def read(self, frames: np.ndarray, length: int | None = None) -> DigitReading:
        """A digit string: the best path of ``length`` digits when that is known and the free reading is at
        most ``SLACK`` digits off it; else the free reading (the dialogue asks again)."""
        lp = self.log_probs(frames)
        free = _greedy(lp)
        entropy = span_entropy(lp)
        if entropy > MAX_SPAN_ENTROPY:
            return DigitReading("", 0.0, free, round(entropy, 4))
        if length is None or len(free) == length or abs(len(free) - length) > SLACK:
            digits, score = free, _path_peaks(lp, free)
        else:
            digits, score = _best_of_length(lp, length)
        return DigitReading(digits, round(math.exp(score), 3) if digits else 0.0, free, round(entropy, 4))


def span_entropy(lp: np.ndarray) -> float:
    """Mean entropy of the frames from the first to the last one that is more likely a digit than blank."""
    on = np.flatnonzero(lp[:, BLANK] < math.log(0.5))
    if not len(on):
        return 0.0
    span = lp[on[0]:on[-1] + 1]
    return float(-(np.exp(span) * span).sum(axis=1).mean())


def _greedy(lp: np.ndarray) -> str:
    best = lp.argmax(axis=1)
    keep = (best != BLANK) & np.concatenate([[True], best[1:] != best[:-1]])
    return "".join(str(b - 1) for b in best[keep])


def _path_peaks(lp: np.ndarray, digits: str) -> float:
    """Mean log of each digit's peak probability along the greedy path (a confidence, not a likelihood)."""
    if not digits:
        return -math.inf
    best = lp.argmax(axis=1)
    starts = np.flatnonzero(np.concatenate([[True], best[1:] != best[:-1]]))  # runs of one symbol
    ends = np.append(starts[1:], len(best))
    return float(np.mean([lp[a:b, best[a]].max() for a, b in zip(starts, ends, strict=True) if best[a] != BLANK]))


def _best_of_length(lp: np.ndarray, n: int) -> tuple[str, float]:
    """The best CTC path that emits exactly ``n`` digits (Viterbi over (digits emitted, last symbol)).

    score[c, s]: best log-probability of a path that has emitted c digits and now sits on symbol s
    (0 = blank, 1..10 = a digit). A new digit is entered from blank or from another digit; staying on a
    digit repeats it without emitting. The returned score is the path's mean log-probability per digit
    peak, comparable with ``_path_peaks``.
    """
    t_len, n_sym = lp.shape
    if n == 0 or t_len < n:
        return "", -math.inf
    neg = -1e30
    score = np.full((n + 1, n_sym), neg)
    score[0, BLANK] = lp[0, BLANK]
    score[1, 1:] = lp[0, 1:]
    back = np.zeros((t_len, n + 1, n_sym, 2), dtype=np.int16)  # previous (c, s)
    back[0] = -1
    stay = np.stack(np.meshgrid(np.arange(n + 1), np.arange(n_sym), indexing="ij"), axis=-1).astype(np.int16)
    for t in range(1, t_len):
        new = score.copy()  # staying on the same symbol with the same count
        bk = stay.copy()
        # to blank from any digit, same count
        best_digit = score[:, 1:].max(axis=1)
        arg_digit = score[:, 1:].argmax(axis=1) + 1
        better = best_digit > new[:, BLANK]
        new[better, BLANK] = best_digit[better]
        bk[better, BLANK, 1] = arg_digit[better]
        # a new digit s from blank or from another digit, count c-1 -> c
        for s in range(1, n_sym):
            prev = score[:-1].copy()
            prev[:, s] = neg  # the same digit again needs a blank between
            src = prev.argmax(axis=1)
            val = prev[np.arange(n), src]
            better = val > new[1:, s]
            new[1:, s][better] = val[better]
            bk[1:, s, 0][better] = np.arange(n)[better]
            bk[1:, s, 1][better] = src[better]
        score = new + lp[t][None, :]
        back[t] = bk
    end = int(np.argmax(score[n]))
    if score[n, end] <= neg / 2:
        return "", -math.inf
    # trace back the symbols
    syms = np.zeros(t_len, dtype=np.int16)
    c, s = n, end
    for t in range(t_len - 1, -1, -1):
        syms[t] = s
        if t:
            c, s = int(back[t, c, s, 0]), int(back[t, c, s, 1])
    digits, peaks, prev = [], [], BLANK
    for t, s in enumerate(syms):
        if s != BLANK and s != prev:
            digits.append(str(s - 1))
            peaks.append(lp[t, s])
        elif s != BLANK:
            peaks[-1] = max(peaks[-1], lp[t, s])
        prev = s
    return "".join(digits), float(np.mean(peaks))
