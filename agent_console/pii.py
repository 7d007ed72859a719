"""Personal data in text: ID-card numbers, phone numbers and case numbers, masked.

One place decides what is masked and who sees it in clear (:data:`SEES_CLEAR`); everything that leaves
the hub for a browser goes through :func:`mask_for` (or :func:`mask_fields`), and the hub's log lines go
through :class:`MaskingFilter`.

- ID-card numbers (18 characters, the last may be X) keep the first 4 and last 2: ``4403************3X``;
- mobile numbers keep 3 + 4 (``138****5678``), landlines keep the area code and the last 2
  (``020-******78``), any other run of 7 or more digits (spelled with digits or Chinese numerals) keeps
  its last 2;
- case numbers keep year, court and case type and hide the sequence: ``（2023）粤0305民初****号``; the keypad
  form ``2023*440305*1*1234`` becomes ``2023*440305*1*****``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from zh_text.case_number import KEYPAD_TYPES, PROVINCES

#: role -> sees personal data in clear (everyone not listed sees it masked)
SEES_CLEAR: Mapping[str, bool] = {"admin": True, "supervisor": False, "operator": False, "handler": False}

#: keys whose string values carry what a citizen said or typed (masked wherever they appear)
TEXT_FIELDS = frozenset({"caller", "text", "query", "content", "note", "notes", "citizen_phone", "case_number",
                         "digits", "transcript", "title"})

_CN_DIGITS = "零〇○一幺二两三四五六七八九"
_ID_RE = re.compile(r"(?<![0-9A-Za-z])([1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}"
                    r"[0-9Xx])(?![0-9A-Za-z])")
# no letter or digit right before or after: a hex id such as a call id is not a phone number
_MOBILE_RE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?![0-9A-Za-z])")
_LANDLINE_RE = re.compile(r"(?<![0-9A-Za-z])[(（]?(0\d{2,3})[)）]?[\s-]?(\d{3,4})[\s-]?(\d{4})(?![0-9A-Za-z])")
_TYPES = "|".join(sorted(map(re.escape, KEYPAD_TYPES.values()), key=len, reverse=True))
_PROVS = "|".join(sorted(map(re.escape, PROVINCES), key=len, reverse=True))
_CASE_RE = re.compile(
    r"([(（\[【]\s*(?:\d{4}|[" + _CN_DIGITS + r"]{4})\s*[)）\]】]\s*(?:" + _PROVS + r")\s*"
    r"(?:\d{0,4}|[" + _CN_DIGITS + r"]{0,4})\s*(?:" + _TYPES + r")\s*(?:字)?\s*(?:第)?\s*)"
    r"(\d{1,8}|[" + _CN_DIGITS + r"十百千]{1,12})(\s*号)")
_KEYPAD_CASE_RE = re.compile(r"(?<!\d)((?:19|20)\d{2}\*\d{2,6}\*\d{1,2}\*)(\d{1,8})(#?)(?!\d)")
_LONG_DIGITS_RE = re.compile(r"(?<![0-9A-Za-z])\d{7,}(?![0-9A-Za-z])|[" + _CN_DIGITS + r"]{7,}")


def _stars(n: int) -> str:
    return "*" * max(n, 1)


def _mask_long(m: re.Match[str]) -> str:
    s = m.group(0)
    if "*" in s:
        return s
    return _stars(len(s) - 2) + s[-2:]


def mask_text(text: str) -> str:
    """``text`` with every ID-card number, phone number, case number and long digit run masked."""
    if not text:
        return text
    t = _CASE_RE.sub(lambda m: m.group(1) + _stars(len(m.group(2))) + m.group(3), text)
    t = _KEYPAD_CASE_RE.sub(lambda m: m.group(1) + _stars(len(m.group(2))) + m.group(3), t)
    t = _ID_RE.sub(lambda m: m.group(1)[:4] + _stars(12) + m.group(1)[-2:], t)
    t = _MOBILE_RE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", t)
    t = _LANDLINE_RE.sub(lambda m: f"{m.group(1)}-{_stars(len(m.group(2)) + 2)}{m.group(3)[-2:]}", t)
    return _LONG_DIGITS_RE.sub(_mask_long, t)


def mask_log_values(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """A structlog processor: every string value of a log line masked (ids and timestamps pass unchanged)."""
    for k, v in event.items():
        if isinstance(v, str) and k != "timestamp" and not k.endswith("id"):
            event[k] = mask_text(v)
    return event


def sees_clear(role: str) -> bool:
    return SEES_CLEAR.get(role, False)


def mask_fields(value: Any, fields: Iterable[str] = TEXT_FIELDS, *, _inside: bool = False) -> Any:
    """A copy of a JSON-like value where every string under a key in ``fields`` is masked, at any depth.

    A string counts when its own key is in ``fields``, or when it is an item of a list under such a key;
    other keys of objects inside such a list (ids, timestamps) are left alone.
    """
    keys = fields if isinstance(fields, frozenset) else frozenset(fields)
    if isinstance(value, str):
        return mask_text(value) if _inside else value
    if isinstance(value, Mapping):
        return {k: mask_fields(v, keys, _inside=k in keys) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_fields(v, keys, _inside=_inside) for v in value]
    return value


def mask_for(role: str, value: Any) -> Any:
    """``value`` as a user of ``role`` may see it (masked unless :data:`SEES_CLEAR` says otherwise)."""
    return value if sees_clear(role) else mask_fields(value)


class MaskingFilter(logging.Filter):
    """Masks personal data in a log record's message (after %-formatting), for any handler or logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is logging's problem, not ours
            return True
        masked = mask_text(msg)
        if masked != msg:
            record.msg, record.args = masked, None
        return True
