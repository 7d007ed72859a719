"""What a verb tells the engine to do next (None: go on with the next verb)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Goto:
    node: str


@dataclass(frozen=True)
class Repeat:
    """Run the current node again from its first verb."""


@dataclass(frozen=True)
class Hangup:
    cause: str = "ivr_hangup"


Outcome = Goto | Repeat | Hangup | None
