"""The case-system adapter interface the hub calls, whichever backend answers.

``get_case(number)`` takes a case number in any form :func:`court_cases.numbers.normalise` reads, or a
lookup number, and returns the case or None (no such case, or not a number at all). ``verify(number,
secret)`` says whether ``secret`` — the case's 查询密码 or the last 6 characters of a party's ID number —
belongs to the case (False for an unknown case). Both raise :class:`CaseSystemUnavailable` when the backend
cannot answer (down, timeout, 5xx, garbage): that is never "not found" and never "wrong".
"""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

from court_cases.case import CaseInfo

#: longest secret accepted (a 查询密码 is usually 6 digits; ID numbers end in 6 characters)
SECRET_MAX = 32


class CaseSystemError(Exception):
    """Base of the case system's errors."""


class CaseSystemUnavailable(CaseSystemError):
    """The case system cannot answer now (down, timeout, 5xx, invalid reply). The message has no personal data."""


@runtime_checkable
class CaseSystem(Protocol):
    def get_case(self, case_number: str) -> CaseInfo | None: ...

    def verify(self, case_number: str, secret: str) -> bool: ...

    def close(self) -> None: ...


def normalise_secret(secret: str) -> str:
    """A secret as compared: spaces gone, upper case; ``*`` is the keypad's X (an ID number's last character)."""
    return re.sub(r"\s+", "", secret).upper().replace("*", "X")[:SECRET_MAX]
