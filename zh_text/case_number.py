"""Chinese court case numbers (案号): （2023）粤0305民初1234号 from text, speech or keypad digits.

Keypad form (documented for callers and menus): ``YEAR*COURT*TYPE*SEQ`` — the year (4 digits), the
court as the province's administrative code (2 digits, e.g. 44 = 粤) followed by the court's digits,
a case-type number from ``KEYPAD_TYPES``, and the sequence number: 2023*440305*1*1234 is
（2023）粤0305民初1234号.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zh_text.normalize import numerals_to_digits, to_halfwidth, to_simplified

PROVINCES = {
    "京": "11", "津": "12", "冀": "13", "晋": "14", "蒙": "15", "内蒙": "15", "辽": "21", "吉": "22", "黑": "23",
    "沪": "31", "苏": "32", "浙": "33", "皖": "34", "闽": "35", "赣": "36", "鲁": "37", "豫": "41", "鄂": "42",
    "湘": "43", "粤": "44", "桂": "45", "琼": "46", "渝": "50", "川": "51", "贵": "52", "黔": "52", "云": "53",
    "滇": "53", "藏": "54", "陕": "61", "甘": "62", "青": "63", "宁": "64", "新": "65", "兵": "66", "最高法": "00",
}
PROVINCE_BY_CODE = {code: abbr for abbr, code in PROVINCES.items() if abbr not in ("内蒙", "黔", "滇")}
# case types by keypad number (the common ones; the court's full list can extend this)
KEYPAD_TYPES = {
    "1": "民初", "2": "民终", "3": "民再", "4": "执", "5": "执恢", "6": "执异", "7": "刑初", "8": "刑终",
    "9": "行初", "10": "行终", "11": "财保", "12": "破", "13": "民特", "14": "民申", "15": "执保",
}
TYPE_TO_KEY = {v: k for k, v in KEYPAD_TYPES.items()}
_TYPES_RE = "|".join(sorted(map(re.escape, KEYPAD_TYPES.values()), key=len, reverse=True))
_TEXT_RE = re.compile(
    r"[(（\[【]?\s*(?P<year>(?:19|20)\d{2})\s*(?:年)?\s*[)）\]】]?\s*"
    r"(?P<prov>" + "|".join(sorted(map(re.escape, PROVINCES), key=len, reverse=True)) + r")\s*"
    r"(?P<court>\d{0,4})\s*(?P<type>" + _TYPES_RE + r")\s*(?:字)?\s*(?:第)?\s*(?P<seq>\d{1,8})\s*号?"
)
_KEYPAD_RE = re.compile(r"^(?P<year>(?:19|20)\d{2})\*(?P<court>\d{2,6})\*(?P<type>\d{1,2})\*(?P<seq>\d{1,8})#?$")


@dataclass(frozen=True)
class CaseNumber:
    year: int
    province: str  # 粤
    court: str  # 0305 (may be empty for a provincial high court)
    case_type: str  # 民初
    seq: int

    @property
    def canonical(self) -> str:
        return f"（{self.year}）{self.province}{self.court}{self.case_type}{self.seq}号"

    @property
    def keypad(self) -> str | None:
        key = TYPE_TO_KEY.get(self.case_type)
        code = PROVINCES.get(self.province)
        if key is None or code is None:
            return None
        return f"{self.year}*{code}{self.court}*{key}*{self.seq}"


def parse_case_number(text: str) -> CaseNumber | None:
    """A case number in ``text`` (written, spoken with Chinese numerals, or keypad form), or None."""
    t = to_halfwidth(to_simplified(text)).strip()
    m = _KEYPAD_RE.match(t.replace(" ", ""))
    if m:
        court = m["court"]
        prov = PROVINCE_BY_CODE.get(court[:2])
        case_type = KEYPAD_TYPES.get(m["type"])
        if prov is None or case_type is None:
            return None
        return CaseNumber(int(m["year"]), prov, court[2:], case_type, int(m["seq"]))
    m = _TEXT_RE.search(numerals_to_digits(t))
    if not m:
        return None
    return CaseNumber(int(m["year"]), m["prov"], m["court"], m["type"], int(m["seq"]))
