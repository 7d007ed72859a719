"""Work-order numbers citizens can read out on the phone: 12368-20261130-0001 (the court's date, then a
per-day sequence). The store assigns the sequence under its unique constraint; this module formats
and parses."""

from __future__ import annotations

import re
from datetime import date

PREFIX = "12368"
_RE = re.compile(rf"^{PREFIX}-(\d{{8}})-(\d{{4,6}})$")


def format_number(day: date, seq: int) -> str:
    if not 1 <= seq <= 999_999:
        raise ValueError("sequence out of range")
    return f"{PREFIX}-{day:%Y%m%d}-{seq:04d}"


def parse_number(number: str) -> tuple[date, int] | None:
    m = _RE.match(number.strip())
    if not m:
        return None
    try:
        day = date(int(m[1][:4]), int(m[1][4:6]), int(m[1][6:]))
    except ValueError:
        return None
    return day, int(m[2])
