"""One fake call line for the flow and dialog tests: every port of ``ivr.flow.channel.Channel``.

``FakeChannel`` has what a test rarely cares about (the hub's inbox, cleanups, audio taps, no second line,
a keypad buffer, the call's record in ``events``) and a caller who keeps quiet: ``hears`` is False and
``audio_chunks`` yields nothing. A test's caller subclasses it for what it acts out (when keys are pressed,
how long prompts take, what audio arrives) and sets ``hears = True`` when it sends audio.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable

from ivr.audio import Clip
from ivr.contract import HubCommand, QueueStatus
from ivr.flow.channel import PlayResult


class FakeChannel:
    call_id = "fake"
    rate = 8000
    hears = False

    def __init__(self, rate: int = 8000):
        self.rate = rate
        self.pending: deque[str] = deque()  # keys pressed and not yet read
        self.played: list = []
        self.stopped = 0  # stop_prompt calls
        self.hung_up = False
        self.events: list[tuple[type, dict]] = []
        self.inbox: asyncio.Queue[HubCommand] = asyncio.Queue()
        self.queued = False
        self.queue_status: QueueStatus | None = None
        self.host: object | None = None
        self.cleanups: list[Callable[[], None]] = []
        self.audio_taps: list[Callable[[bytes], None]] = []
        self.hangup_cause: str | None = None

    async def play(self, clip: Clip, barge_in: bool) -> PlayResult:
        self.played.append(clip.name)
        return PlayResult(clip.duration_ms, False)

    def stop_prompt(self) -> None:
        self.stopped += 1

    def has_digits(self) -> bool:
        return bool(self.pending)

    async def next_digit(self, timeout: float) -> tuple[str, str] | None:
        return (self.pending.popleft(), "rfc4733") if self.pending else None

    def flush_digits(self) -> None:
        self.pending.clear()

    async def hangup(self) -> None:
        self.hung_up = True

    async def audio_chunks(self) -> AsyncIterator[bytes]:
        return
        yield b""  # an async generator that ends at once

    def emit(self, event_cls: type, **fields: object) -> None:
        self.events.append((event_cls, fields))
