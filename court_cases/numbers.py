"""What a caller or a file calls a case: a case number (案号) or the short lookup number on a court notice.

- a case number in any form :func:`zh_text.case_number.parse_case_number` reads — written
  （2023）粤0305民初1234号, spoken with Chinese numerals, or the keypad form ``2023*440305*1*1234`` (year,
  province code + court digits, case type number, sequence, ``*`` between them, ``#`` at the end
  allowed) — becomes its canonical written form;
- a lookup number (查询号) is :data:`LOOKUP_MIN`–:data:`LOOKUP_MAX` digits with no ``*`` (8 on this court's
  notices), typed on the keypad or spoken digit by digit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from zh_text.case_number import parse_case_number
from zh_text.normalize import numerals_to_digits, to_halfwidth, to_simplified

LOOKUP_MIN = 6
LOOKUP_MAX = 12
_LOOKUP_RE = re.compile(rf"^\d{{{LOOKUP_MIN},{LOOKUP_MAX}}}$")
_SPOKEN_DIGITS = str.maketrans("零〇○一幺二两三四五六七八九", "00011223456789")
_SEPARATORS_RE = re.compile(r"[\s\-_.,，。、]+")


@dataclass(frozen=True)
class CaseRef:
    """A normalised reference: ``kind`` case (``value`` is the canonical case number) or lookup (the digits)."""

    kind: Literal["case", "lookup"]
    value: str

    @property
    def is_lookup(self) -> bool:
        return self.kind == "lookup"


def lookup_number(text: str) -> str | None:
    """The digits of a lookup number in ``text`` (``#`` at the end and separators allowed), or None."""
    t = _SEPARATORS_RE.sub("", to_halfwidth(to_simplified(text))).removesuffix("#")
    if t and not t.isdigit():
        t = t.translate(_SPOKEN_DIGITS)  # 一二三四五六七八 read one by one
    return t if _LOOKUP_RE.match(t) else None


def normalise(text: str) -> CaseRef | None:
    """A :class:`CaseRef` for ``text`` (keypad digits, written or spoken), or None when it is neither kind."""
    if not isinstance(text, str) or not text.strip() or len(text) > 100:
        return None
    digits = lookup_number(text)
    if digits is not None:
        return CaseRef("lookup", digits)
    parsed = parse_case_number(text)
    if parsed is None:
        # "二零二三年粤零三零五民初一二三四号": digits read one by one are not numerals the parser folds
        spoken = numerals_to_digits(to_simplified(text)).translate(_SPOKEN_DIGITS)
        parsed = parse_case_number(spoken)
    return CaseRef("case", parsed.canonical) if parsed is not None else None


def canonical_case_number(text: str) -> str | None:
    """The canonical written form of a case number (not a lookup number), or None."""
    ref = normalise(text)
    return ref.value if ref is not None and ref.kind == "case" else None
