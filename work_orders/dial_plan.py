"""Which numbers the hub may call back by itself: mainland China mobiles and landlines only.

A call's caller ID is the SIP From header, which the caller chooses; the automatic callback (回访) must not
become a way to make the court dial international or premium-rate numbers, nor call a host's digits. So:

- :func:`caller_number` takes the user part of the caller's SIP URI (``"x" <sip:138…@10.0.0.5:5060>`` →
  ``138…``), never the host or port;
- :func:`check` accepts a mobile (``1[3-9]`` + 9 digits) or a landline (``0`` + a 2–3 digit area code + a 7–8
  digit number: 010/02x + 8 digits, 0[3-9]xx + 7–8 digits), with ``+86``/``0086`` read as the national form.
  International numbers (``00``/``+`` other than 86), short and service codes (10086, 95xxx, 12345, 400/800
  numbers) are refused with a reason staff can read (Simplified Chinese).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEPARATORS = re.compile(r"[\s\-().]")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0(?:10|2\d)\d{8}|0[3-9]\d{2}\d{7,8}")
_URI_USER = re.compile(r"(?:sips?|tel):([^@;>\s]+)", re.IGNORECASE)


@dataclass(frozen=True)
class DialCheck:
    number: str  # the national form that would be dialled ('' when refused)
    reason: str = ""  # why not (Simplified Chinese, shown to staff); '' when dialable

    @property
    def ok(self) -> bool:
        return not self.reason


def caller_number(remote_uri: str) -> str:
    """The user part of a SIP/tel URI or name-addr (what the caller's phone says its number is); the text
    itself when it is no URI (a number typed by staff)."""
    raw = (remote_uri or "").strip()
    m = _URI_USER.search(raw)
    user = m.group(1) if m else raw
    return user.split(":", 1)[0].strip()[:64]


def check(phone: str) -> DialCheck:
    """Whether the automatic callback may dial ``phone``, and the number it would dial."""
    raw = _SEPARATORS.sub("", (phone or "").strip())
    if not raw:
        return DialCheck("", "未留联系电话")
    if raw.startswith("+86"):
        raw = raw[3:]
    elif raw.startswith("0086"):
        raw = raw[4:]
    elif raw.startswith(("+", "00")):
        return DialCheck("", f"号码 {phone} 是境外号码，自动回访只拨打大陆手机号和固定电话")
    if raw.startswith("86") and _MOBILE.fullmatch(raw[2:]):
        raw = raw[2:]
    if not raw.isdigit():
        return DialCheck("", f"号码 {phone} 含有非数字字符，不是可拨打的电话号码")
    if _MOBILE.fullmatch(raw) or _LANDLINE.fullmatch(raw):
        return DialCheck(raw)
    if len(raw) <= 8 or raw.startswith(("400", "800", "95", "96")):
        return DialCheck("", f"号码 {phone} 是短号码或特服号码（如 10086、95xxx、400），不予自动回拨")
    return DialCheck("", f"号码 {phone} 不是大陆手机号（1开头11位）或带区号的固定电话")
