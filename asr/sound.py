"""Fuzzy matching of Mandarin syllables by sound, for reading what whisper wrote for a spoken number.

Whisper base writes a heard syllable with whatever character it likes best: 集会 for 执恢 (ji-hui for
zhi-hui), 号 or 五 for 沪 (hao, wu for hu), 夭/要 for 幺, 形出 for 刑初. Comparing pinyin initials
and finals with the usual confusion groups (z/zh/j, c/ch/q, s/sh/x, l/n, h/f/w, y/w/none; in/ing,
en/eng, an/ang, …) gives a similarity in [0, 1] that ignores tones (they are unreliable here).
"""

from __future__ import annotations

from functools import lru_cache

from pypinyin import Style, lazy_pinyin

_INITIAL_GROUPS = [{"z", "zh", "j"}, {"c", "ch", "q"}, {"s", "sh", "x"}, {"l", "n"}, {"h", "f", "w"},
                   {"y", "w", ""}, {"d", "t"}, {"b", "p"}, {"g", "k"}]
_FINAL_GROUPS = [{"in", "ing"}, {"en", "eng", "ong"}, {"an", "ang", "ian", "iang"}, {"ao", "iao"},
                 {"ui", "ei", "uei"}, {"uan", "an"}, {"ue", "ve", "üe"}, {"u", "v", "ü"}, {"i", "-i"}]


@lru_cache(maxsize=4096)
def syllable(c: str) -> tuple[str, str]:
    """(initial, final) of one character's most common reading; 行 as in 银行/行政 (xing)."""
    if c in "行":
        return ("x", "ing")
    ini = lazy_pinyin(c, style=Style.INITIALS, strict=False)[0]
    fin = lazy_pinyin(c, style=Style.FINALS, strict=False)[0]
    if fin == c:  # not a Chinese character
        return ("", c)
    return ini, fin


def _part(a: str, b: str, groups: list[set[str]]) -> float:
    if a == b:
        return 1.0
    return 0.6 if any(a in g and b in g for g in groups) else 0.0


def similarity(a: tuple[str, str], b: tuple[str, str]) -> float:
    """1.0 for the same syllable, 0.8 when one part is a usual confusion, down to 0."""
    return (_part(a[0], b[0], _INITIAL_GROUPS) + _part(a[1], b[1], _FINAL_GROUPS)) / 2


def word_similarity(heard: str, word: str) -> float:
    """Mean syllable similarity of two words of the same length (0 when the lengths differ)."""
    if len(heard) != len(word) or not word:
        return 0.0
    return sum(similarity(syllable(h), syllable(w)) for h, w in zip(heard, word, strict=True)) / len(word)


def nearest(heard: str, words: list[str], floor: float = 0.75) -> str | None:
    """The word of ``words`` that sounds most like ``heard`` (at least ``floor``, and a unique best)."""
    scored = sorted(((word_similarity(heard, w), w) for w in words), reverse=True)
    if not scored or scored[0][0] < floor or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return None
    return scored[0][1]
