"""Masks for log lines and for staff who may not see personal data in clear.

Log lines of this package name a case by its masked number and never carry a party's name, a secret or
a caller's full number.
"""

from __future__ import annotations

import re

_SEQ_RE = re.compile(r"(\d+)(号)$")


def mask_number(number: str) -> str:
    """（2023）粤0305民初1234号 → （2023）粤0305民初****号; a lookup number or other digits keep the last 2."""
    if not number:
        return number
    m = _SEQ_RE.search(number)
    if m:
        return number[: m.start(1)] + "*" * len(m.group(1)) + m.group(2)
    return mask_digits(number)


def mask_digits(text: str) -> str:
    """All but the last 2 characters starred (a caller's number, a lookup number)."""
    if len(text) <= 2:
        return "*" * len(text)
    return "*" * (len(text) - 2) + text[-2:]


def mask_name(name: str) -> str:
    """张三 → 张*, 欧阳娜娜 → 欧***; a company keeps its first 2 characters: 深圳**********."""
    if not name:
        return name
    keep = 2 if len(name) > 5 else 1
    return name[:keep] + "*" * (len(name) - keep)
