"""Cut speech longer than the encoder window into windows at VAD pauses (issue 14, long speech).

Whisper decodes one encoder window (``window_s``) at a time; cutting a 40 s question or a 60 s
message every ``window_s`` seconds splits words and loses them. Here each cut goes into a pause
(Silero probability low for at least ~100 ms), the longest pause in the second half of the window
if there is one; windows without speech are dropped (a message's long silences cost no decode).
"""

from __future__ import annotations

import numpy as np

from asr.audio import MODEL_RATE
from asr.vad import WINDOW

PAUSE_PROB = 0.35  # below this a VAD window counts as a pause
MIN_PAUSE_WINDOWS = 3  # ~100 ms


def _pauses(probs: np.ndarray) -> list[tuple[int, int]]:
    """(first, end) VAD-window indices of runs below PAUSE_PROB at least MIN_PAUSE_WINDOWS long."""
    quiet = np.concatenate([[False], probs < PAUSE_PROB, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    runs = list(zip(edges[::2], edges[1::2], strict=True))
    return [(int(a), int(b)) for a, b in runs if b - a >= MIN_PAUSE_WINDOWS]


def split_at_pauses(n_samples: int, probs: np.ndarray, window_s: float, min_speech_s: float = 0.25,
                    speech_prob: float = 0.5) -> list[tuple[int, int]]:
    """Sample ranges of at most ``window_s`` (minus a margin) each, cut in pauses, in order; ranges
    with less than ``min_speech_s`` of speech are left out."""
    limit = int((window_s - 0.3) * MODEL_RATE)
    if n_samples <= limit:
        return [(0, n_samples)]
    pauses = _pauses(probs)
    out: list[tuple[int, int]] = []
    start = 0
    while start < n_samples:
        if n_samples - start <= limit:
            end = n_samples
        else:
            lo, hi = start + limit // 2, start + limit
            # candidate cut: the middle of a pause that lies (mostly) in the second half of the window
            cands = [(b - a, (a + b) // 2 * WINDOW) for a, b in pauses if lo <= (a + b) // 2 * WINDOW <= hi]
            if cands:
                end = max(cands)[1]
            else:  # no pause: the least speech-like VAD window in the second half
                a, b = lo // WINDOW, min(hi // WINDOW, len(probs))
                end = (a + int(np.argmin(probs[a:b]))) * WINDOW if b > a else hi
        seg = probs[start // WINDOW: end // WINDOW]
        if (seg > speech_prob - 0.15).sum() * WINDOW / MODEL_RATE >= min_speech_s:
            out.append((start, end))
        start = end
    return out
