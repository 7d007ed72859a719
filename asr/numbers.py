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
from pypinyin import Style, lazy_pinyin

from zh_text import to_halfwidth, to_simplified
from zh_text.case_number import KEYPAD_TYPES, PROVINCES, CaseNumber

Expect = Literal["digits", "case_number"]
EXPECTS: tuple[str, ...] = ("digits", "case_number")

SPOKEN_DIGIT = {"零": "0", "〇": "0", "○": "0", "洞": "0", "一": "1", "幺": "1", "妖": "1", "腰": "1", "二": "2",
                "两": "2", "三": "3", "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9",
                "拐": "7", "勾": "9", "叉": "X", "x": "X", "X": "X"}
NUMERALS = "零一二三四五六七八九幺两"
#: characters a restricted decode may write (None: no restriction)
ALLOWED: dict[str, str | None] = {"digits": NUMERALS + "叉，", "case_number": None}
PROMPTS = {"digits": "幺三八，零五七幺，零二四六。",
           "case_number": "二零二五粤零三零五民初幺二三四号，二零二六京零幺执五六八号。"}
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


def to_digits(text: str) -> str:
    """The digits (and X) of a spoken or written digit string: 幺三八 → 138; everything else dropped."""
    t = to_halfwidth(to_simplified(text))
    return "".join(SPOKEN_DIGIT.get(c, c) for c in t if c.isdigit() or c in SPOKEN_DIGIT)


def _syllable(c: str) -> str:
    s = lazy_pinyin(c, style=Style.NORMAL)[0]
    return {"hang": "xing"}.get(s, s)  # 行 read as in 银行


_PROVINCE_BY_SOUND: dict[str, str] = {}
for _abbr in PROVINCES:
    if len(_abbr) == 1:
        _PROVINCE_BY_SOUND.setdefault(_syllable(_abbr), _abbr)
_TYPE_BY_SOUND = {"".join(_syllable(c) for c in t): t for t in KEYPAD_TYPES.values()}
_TYPE_BY_SOUND.setdefault("xingchu", "行初")  # 刑初 and 行初 sound the same; the case store can try both


def _numeral_run(run: str) -> str:
    run = run.replace("幺", "一").replace("两", "二")
    if set(run) & set("十百千"):
        try:
            return str(cn2an.cn2an(run, "smart"))
        except (ValueError, KeyError):
            pass
    return "".join(SPOKEN_DIGIT.get(c, c) for c in run if c.isdigit() or c in SPOKEN_DIGIT)


def parse_spoken_case_number(text: str) -> CaseNumber | None:
    """A case number from what whisper wrote for a spoken one, read by sound: 二零二五乡零四行初四二零九号
    → （2025）湘04行初4209号; None when a part is missing."""
    t = re.sub(r"[\s\W_]+", "", to_halfwidth(to_simplified(text)))
    parts: list[tuple[str, str]] = []  # ("num", digits) or ("syl", pinyin)
    i = 0
    while i < len(t):
        if t[i] in NUMERALS or t[i] in "十百千" or t[i].isdigit():
            j = i
            while j < len(t) and (t[j] in NUMERALS or t[j] in "十百千" or t[j].isdigit()):
                j += 1
            parts.append(("num", _numeral_run(t[i:j])))
            i = j
        else:
            parts.append(("syl", t[i]))
            i += 1
    if not parts or parts[0][0] != "num" or len(parts[0][1]) < 4:
        return None
    year, court = parts[0][1][:4], parts[0][1][4:]
    k = 1
    province = None
    while k < len(parts) and parts[k][0] == "syl" and province is None:
        c = parts[k][1]
        province = c if c in PROVINCES else _PROVINCE_BY_SOUND.get(_syllable(c))
        k += 1
    if province is None or court:
        return None
    if k < len(parts) and parts[k][0] == "num":
        court = parts[k][1]
        k += 1
    sounds = ""
    case_type = None
    while k < len(parts) and parts[k][0] == "syl" and case_type is None:
        sounds += _syllable(parts[k][1])
        case_type = _TYPE_BY_SOUND.get(sounds)
        k += 1
    if case_type is None or k >= len(parts) or parts[k][0] != "num" or len(court) > 4:
        return None
    seq = parts[k][1]
    if not (year.startswith(("19", "20")) and seq.isdigit() and 0 < int(seq) < 10**8):
        return None
    return CaseNumber(int(year), province, court, case_type, int(seq))


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
