"""The repetition guard: whisper on a short window or unclear audio can loop ("执行库割割割割剈剈剈…").

A run of the same 1-3 characters repeated, or of a phrase of 4-40 characters said three times in a row
("上诉、执行是多少天。上诉、执行是多少天。…", seen on an operator's leg), is cut after its first occurrence and
the text stops there: what follows a loop is never speech the decoder recovered.
"""

from __future__ import annotations

import re

# a 1-character unit repeated 4+ times in all ("割割割割"), a 2-3 character unit 4+ times, a longer phrase 3+
# times (people repeat a short word for emphasis, 转人工转人工; not a whole phrase three times over); digit
# strings (phone numbers like 138 8888 8888) legitimately repeat a digit, so for them only 8+ counts
_LOOP = re.compile(r"(.)\1{3,}|(.{2,3}?)\2{3,}|(.{4,40}?)\3{2,}", re.DOTALL)
_DIGIT_LOOP = re.compile(r"(\d)\1{7,}|(\d{2,3}?)\2{3,}|([^\d\s])\3{4,}|([^\d\s]{2,3}?)\4{3,}", re.DOTALL)


def cut_loop(text: str, digits: bool = False) -> tuple[str, bool]:
    """``text`` up to and including the first occurrence of a repeated unit; True when it was cut."""
    m = (_DIGIT_LOOP if digits else _LOOP).search(text)
    if not m:
        return text, False
    unit = next(g for g in m.groups() if g)
    return text[: m.start()] + unit, True


def longest_run(text: str) -> int:
    """Length of the longest run of one character (the acceptance bound: under 8)."""
    best = run = 0
    prev = None
    for c in text:
        run = run + 1 if c == prev else 1
        prev = c
        best = max(best, run)
    return best
