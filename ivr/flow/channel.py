"""What a call offers the code that talks on it: prompts out, keys and caller audio in, hub commands, cleanups,
the call's record. The SIP worker's ``CallSession`` implements it; unit tests use tests/fakes.FakeChannel.

Every channel has every port, so a dialog asks ``channel.hears`` instead of probing for methods: a channel that
carries no caller audio (a keypad-only fake) says ``hears = False`` and its ``audio_chunks`` yields nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from ivr.audio import Clip
from ivr.contract import HubCommand, QueueStatus


@dataclass(frozen=True)
class PlayResult:
    played_ms: int
    interrupted: bool


class Channel(Protocol):
    call_id: str
    rate: int  # the clock of caller audio and prompts (Hz)

    # ---- prompts out, keys in
    async def play(self, clip: Clip, barge_in: bool) -> PlayResult:
        """Play a clip; with barge_in a DTMF digit stops it at once (the digit stays buffered)."""
        ...

    def stop_prompt(self) -> None:
        """Stop the prompt now playing (barge-in by voice, a queue command)."""
        ...

    def hold_prompt(self, held: bool) -> None:
        """Silence the prompt now playing where it is, or go on with it (maybe a caller talking over it)."""
        ...

    def has_digits(self) -> bool: ...

    async def next_digit(self, timeout: float) -> tuple[str, str] | None:
        """The next buffered or arriving digit with its method ('rfc4733', 'sip_info'), or None."""
        ...

    def flush_digits(self) -> None: ...

    async def hangup(self) -> None: ...

    # ---- caller audio in
    #: caller audio reaches ``audio_chunks`` (False: keys only; speech dialogs fall back to keys)
    hears: bool
    #: more consumers of caller audio while the call lasts (a recording, a bridged call's transcription)
    audio_taps: list[Callable[[bytes], None]]

    def audio_chunks(self) -> AsyncIterator[bytes]:
        """Caller audio from now on (100 ms chunks of PCM16 at ``rate``) until the call ends."""
        ...

    # ---- the hub's commands (the operator queue, ivr/queueing.py)
    #: QueueStatus and BridgeCommand for this call while ``queued``
    inbox: asyncio.Queue[HubCommand]
    queued: bool
    queue_status: QueueStatus | None  # what the hub last said about this call's place in the queue
    #: the worker lending outbound legs (ivr.bridge.LegHost); None where no second call can be placed
    host: object | None

    # ---- the call's end and record
    #: run (in order) when the call ends, before CallEnded is emitted
    cleanups: list[Callable[[], None]]
    hangup_cause: str | None  # set when the IVR hung up, and why

    def emit(self, event_cls: type, **fields: object) -> None:
        """Record an event of this call (call_id and worker filled in)."""
        ...
