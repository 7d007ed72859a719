"""Spoken numbers (issue 14, part 5): how whisper is asked for a number, and how its text becomes one.

Whisper base writes a spoken digit string as a word salad ("2003103名出业案3次号") when it may write
anything. When the dialogue expects a number the decode changes (measured in bench/speech_turns.py):
``expect="digits"`` (phone numbers, query codes, ID numbers) suppresses every vocabulary token that
cannot spell a Chinese numeral, with a prompt of numerals, so each spoken syllable becomes one
character (arabic digits come out grouped, with digits lost); ``expect="case_number"`` decodes freely
with a prompt of spoken case numbers and reads the text by sound: the province and the case type are
matched on their pinyin (whisper writes 乡 for 湘, 折 for 浙, 民中 for 民终). Several beam hypotheses
are kept, and the first one of the expected length (or that parses as a case number) wins.
"""

from __future__ import annotations

import re
from typing import Literal

import cn2an

from asr.sound import nearest, syllable
from zh_text import to_halfwidth, to_simplified
from zh_text.case_number import KEYPAD_TYPES, PROVINCES, CaseNumber

Expect = Literal["digits", "case_number"]
EXPECTS: tuple[str, ...] = ("digits", "case_number")

SPOKEN_DIGIT = {"零": "0", "〇": "0", "○": "0", "洞": "0", "一": "1", "幺": "1", "妖": "1", "腰": "1", "二": "2",
                "两": "2", "三": "3", "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9",
                "拐": "7", "勾": "9", "叉": "X", "x": "X", "X": "X"}
NUMERALS = "零一二三四五六七八九幺两"
#: characters a restricted decode may write (None: no restriction)
ALLOWED: dict[str, str | None] = {"digits": NUMERALS + "叉", "case_number": None}
# no prompt for digits: a prompt of numerals made whisper repeat and drop more digits (phones 9/14 → 11/14
# exactly right without one, ID numbers 0/4 → 2/4; bench/speech_turns.py on the tuning set)
PROMPTS = {"digits": "",
           "case_number": "二零二五粤零三零五民初幺二三四号，二零二六京零幺执五六八号。"}
#: a digit string of known length may be decoded at several tempos (1.15: 15 % slower), the n-best lists voting:
#: whisper drops or doubles different digits at each; tuning set phones 11/14 → 13/14, codes 6/8 → 7/8,
#: ID numbers 2/4 → 3/4 for ~3x the decode cost (one batch)
DIGIT_TEMPOS: tuple[float, ...] = (1.0,)
#: ... but on the held-out set (tests/data/number_eval) the vote got phones 6/16 and codes 3/8 against 7/16
#: and 3/8 for the plain audio, at 1.1 s instead of 0.5 s a number: off by default (bench --tempos).
VOTE_TEMPOS = (1.0, 1.15, 0.9)
# Not kept either: 8 beam hypotheses instead of 5 (tuning set phones 11/14 → 13/14, held-out 7/16 → 5/16).
PAD_S = (0.5, 0.25)  # silence around a number: whisper drops the first digit of a clip that starts at once


def allowed_tokens(encode, expect: Expect) -> set[int] | None:
    """Token ids that spell the allowed characters (alone or after a space), for ``encode(text) -> ids``."""
    chars = ALLOWED[expect]
    if chars is None:
        return None
    ids: set[int] = set()
    for c in chars:
        for form in (c, " " + c):
            ids.update(encode(form))
    return ids


# A constrained decode allows only the byte tokens of the numerals, but 幺 and 零 are two byte tokens each:
# whisper can start 幺 (E5 B9) and end on another numeral's byte, writing 幼; such a character is the
# numeral it began.
_LEAD_BYTES = {"幺".encode()[:2]: "1", "零".encode()[:2]: "0"}


def unleak(text: str) -> str:
    """Characters a digits-only decode composed from numeral byte tokens, read as the numeral begun."""
    return "".join(c if c in SPOKEN_DIGIT or len(c.encode()) != 3 else _LEAD_BYTES.get(c.encode()[:2], c)
                   for c in text)


def to_digits(text: str) -> str:
    """The digits (and X) of a spoken or written digit string: 幺三八 → 138; everything else dropped."""
    t = to_halfwidth(to_simplified(text))
    return "".join(SPOKEN_DIGIT.get(c, c) for c in t if c.isdigit() or c in SPOKEN_DIGIT)


_DIGIT_SOUNDS = {("y", "ao"): "1", ("y", "i"): "1", ("", "er"): "2", ("l", "iang"): "2", ("s", "an"): "3",
                 ("s", "i"): "4", ("w", "u"): "5", ("l", "iu"): "6", ("q", "i"): "7", ("b", "a"): "8",
                 ("j", "iu"): "9", ("l", "ing"): "0", ("d", "ong"): "0"}
_UNITS = "十百千"
_SINGLE_PROVINCES = [p for p in PROVINCES if len(p) == 1]
_TYPES = sorted(set(KEYPAD_TYPES.values()))
_TYPES_BY_SOUND = [t for t in _TYPES if t not in ("刑初", "刑终")]  # 刑 sounds like 行: one of each pair
#: case types that sound alike: the case store is asked for both (``case_alternatives``)
HOMOPHONE_TYPES = {"刑初": "行初", "行初": "刑初", "刑终": "行终", "行终": "刑终"}


def _digit(c: str) -> str | None:
    """The digit a character stands for: a numeral, or a character that sounds exactly like one (要 → 1)."""
    if c.isdigit() and c.isascii():
        return c
    if c in SPOKEN_DIGIT and c not in "叉xX":
        return SPOKEN_DIGIT[c]
    return _DIGIT_SOUNDS.get(syllable(c))


def _sequence(run: str) -> str | None:
    """A sequence number from a run of digits and units (四千二百零九, 四二零九); 七 before a digit in a
    run with 百 is a misheard 千 (qi / qian: 四七二百零九)."""
    if any(u in run for u in _UNITS):
        if "百" in run and "千" not in run:
            run = re.sub(r"^(\d)7(\d百)", r"\g<1>千\2", run)
        try:
            return str(cn2an.cn2an(_as_numerals(run), "smart"))
        except (ValueError, KeyError):
            return None
    return run


def _as_numerals(run: str) -> str:
    return "".join("零一二三四五六七八九"[int(c)] if c.isdigit() else c for c in run)


def parse_spoken_case_number(text: str) -> CaseNumber | None:
    """A case number from what whisper wrote for a spoken one, read by position and by sound: year (4
    digits), province (one syllable, 乡 → 湘, 号 → 沪), court digits, case type (集会 → 执恢, 民中 → 民终),
    sequence (digits or 四千二百零九), 号. None when a part is missing."""
    cs = [c for c in re.sub(r"[\s\W_]+", "", to_halfwidth(to_simplified(text)))]
    i, year = 0, ""
    while i < len(cs) and len(year) < 4 and (d := _digit(cs[i])) is not None:
        year += d
        i += 1
    if len(year) < 4 or i >= len(cs) or not year.startswith(("19", "20")):
        return None
    c = cs[i]  # a numeral here is a court digit after a lost province (零 would read as 宁), not a province
    province = c if c in PROVINCES else None if _digit(c) is not None else nearest(c, _SINGLE_PROVINCES)
    if province is None:
        return None
    i += 1
    court = ""
    while i < len(cs) and (d := _digit(cs[i])) is not None:
        court += d
        i += 1
    case_type = None
    for width in (2, 1):
        heard = "".join(cs[i:i + width])
        if len(heard) == width and (case_type := (heard if heard in _TYPES else nearest(heard, _TYPES_BY_SOUND))):
            i += width
            break
    if i < len(cs) and cs[i] == "第":  # 民初第一二三号
        i += 1
    if case_type is None or len(court) > 4:
        return None
    run = ""
    while i < len(cs) and cs[i] != "号" and ((d := _digit(cs[i])) is not None or cs[i] in _UNITS):
        run += d if d is not None else cs[i]
        i += 1
    seq = _sequence(run) if run else None
    if not (seq and seq.isdigit() and 0 < int(seq) < 10**8):
        return None
    return CaseNumber(int(year), province, court, case_type, int(seq))


def case_alternatives(canonical: str) -> list[str]:
    """The canonical case number and the ones that sound the same (刑初/行初) for the case store to try."""
    out = [canonical]
    for a, b in HOMOPHONE_TYPES.items():
        if a in canonical:
            out.append(canonical.replace(a, b, 1))
            break
    return out


def interpret(text: str, expect: Expect) -> str:
    """The number the dialogue gets: a digit string, or a case number in canonical form ("" if none)."""
    if expect == "case_number":
        case = parse_spoken_case_number(text)
        return case.canonical if case is not None else ""
    return to_digits(text)


def fits(value: str, expect: Expect, length: int | None) -> bool:
    """Is ``value`` (from ``interpret``) a plausible answer: a case number, or digits of ``length``?"""
    if not value:
        return False
    return expect == "case_number" or length is None or len(value) == length
