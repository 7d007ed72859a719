"""Character error rate on normalised Chinese text (for tests and bench/asr.py)."""

from __future__ import annotations

import re

from zh_text import numerals_to_digits, to_halfwidth, to_simplified

_DROP = re.compile(r"[\s\W_]+", re.UNICODE)


def normalize_for_cer(text: str) -> str:
    """Simplified, half width, lower case, Chinese numerals as digits, no punctuation or spaces."""
    return _DROP.sub("", numerals_to_digits(to_halfwidth(to_simplified(text)).lower()))


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(pairs: list[tuple[str, str]]) -> float:
    """Corpus CER: total edits / total reference characters over (reference, hypothesis) pairs."""
    edits = chars = 0
    for ref, hyp in pairs:
        r, h = normalize_for_cer(ref), normalize_for_cer(hyp)
        edits += edit_distance(r, h)
        chars += len(r)
    return edits / max(1, chars)
