"""Sound codes: every character of a normalised text becomes one code character for its toneless pinyin.

Recognizers write the right sound with the wrong character (速送 for 诉讼, 例案 for 立案, 只行 for 执行),
so the matcher compares sounds. Each syllable is reduced to a *fuzzy* form (zh/z, ch/c, sh/s,
ing/in, eng/en merged: 上述 ≈ 上诉) and mapped to one private-use character, so rapidfuzz and
n-gram features work on syllables exactly as they do on characters. A character has one reading
(pypinyin's most common one), used the same way for the FAQ text and for the query, so polyphones
stay consistent (行 is always the same code in 执行 and in the recognizer's 只行).
Characters without pinyin (digits, Latin letters) stand for themselves.
"""

from __future__ import annotations

import threading
from functools import lru_cache

from pypinyin import Style, pinyin

_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"))
_FINALS = (("ing", "in"), ("eng", "en"))
_BASE = 0xE000
_codes: dict[str, str] = {}
_lock = threading.Lock()


def fuzzy_syllable(syl: str) -> str:
    """zhi→zi, shang→sang, xing→xin, cheng→cen; other syllables unchanged."""
    for a, b in _INITIALS:
        if syl.startswith(a):
            syl = b + syl[len(a):]
            break
    for a, b in _FINALS:
        if syl.endswith(a):
            syl = syl[: -len(a)] + b
            break
    return syl


def _code_for(syl: str) -> str:
    code = _codes.get(syl)
    if code is None:
        with _lock:
            code = _codes.setdefault(syl, chr(_BASE + len(_codes)))
    return code


@lru_cache(maxsize=65536)
def syllable(ch: str) -> str | None:
    """Toneless pinyin of one character, or None for characters without a reading."""
    if not ("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"):
        return None
    syl = pinyin(ch, style=Style.NORMAL, heteronym=False, errors="ignore")
    return syl[0][0] if syl and syl[0] else None


@lru_cache(maxsize=65536)
def _char_code(ch: str, fuzzy: bool) -> str:
    syl = syllable(ch)
    if syl is None:
        return ch
    return _code_for(fuzzy_syllable(syl) if fuzzy else syl)


@lru_cache(maxsize=200_000)
def sound_code(text: str, fuzzy: bool = True) -> str:
    """One code character per character of ``text`` (already normalised)."""
    return "".join(_char_code(c, fuzzy) for c in text)


def readable(code: str) -> str:
    """The syllables behind a sound code, for debugging: '诉讼' → 'su song'."""
    back = {v: k for k, v in _codes.items()}
    return " ".join(back.get(c, c) for c in code)
