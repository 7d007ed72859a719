"""What a verb may do to a call. The SIP worker implements it; unit tests use a fake."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ivr.audio import Clip


@dataclass(frozen=True)
class PlayResult:
    played_ms: int
    interrupted: bool


class Channel(Protocol):
    call_id: str

    async def play(self, clip: Clip, barge_in: bool) -> PlayResult:
        """Play a clip; with barge_in a DTMF digit stops it at once (the digit stays buffered)."""
        ...

    def has_digits(self) -> bool: ...

    async def next_digit(self, timeout: float) -> tuple[str, str] | None:
        """The next buffered or arriving digit with its method ('rfc4733', 'sip_info'), or None."""
        ...

    def flush_digits(self) -> None: ...

    async def hangup(self) -> None: ...
