"""One fake call line and one fake hub for the flow and dialog tests.

``FakeChannel``: every port of ``ivr.flow.channel.Channel``.
``FakeChannel`` has what a test rarely cares about (the hub's inbox, cleanups, audio taps, no second line,
a keypad buffer, the call's record in ``events``) and a caller who keeps quiet: ``hears`` is False and
``audio_chunks`` yields nothing. A test's caller subclasses it for what it acts out (when keys are pressed,
how long prompts take, what audio arrives) and sets ``hears = True`` when it sends audio.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable

import ivr.case_dialog
import ivr.kb_dialog
import ivr.menu_speech
from ivr.audio import Clip
from ivr.contract import HubCommand, QueueStatus
from ivr.flow.channel import PlayResult
from ivr.hub_api import KbMatch, LookupReply, MenuSpec, VerifyReply


class FakeChannel:
    call_id = "fake"
    rate = 8000
    hears = False

    def __init__(self, rate: int = 8000):
        self.rate = rate
        self.pending: deque[str] = deque()  # keys pressed and not yet read
        self.played: list = []
        self.stopped = 0  # stop_prompt calls
        self.held: list[bool] = []  # hold_prompt calls
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

    def hold_prompt(self, held: bool) -> None:
        self.held.append(held)

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


class FakeHubApi:
    """The hub's ``/internal`` answers to a worker, in process (the HTTP stand-in for whole calls is
    tests/fake_hub.py): the knowledge-base match replies by the text asked (``kb``: text -> reply fields; anything
    else is handed off), the case desk by the test's rules (override ``lookup_reply`` / ``verify_reply``). Every
    request is recorded; replies are the shared models of ivr/hub_api.py. ``install`` puts it where the dialogs
    call the hub: the match with ``kb`` given, the case desk when ``cases``."""

    def __init__(self, kb: dict[str, dict] | None = None, delay_s: float = 0.0):
        self.kb = kb
        self.delay_s = delay_s  # each match takes this long (a hub round trip)
        self.asked: list[tuple[str, MenuSpec | None, float | None]] = []
        self.lookups: list[dict] = []
        self.secrets: list[str] = []

    def install(self, monkeypatch, cases: bool = False) -> FakeHubApi:
        if self.kb is not None:
            for module in (ivr.kb_dialog, ivr.menu_speech):
                monkeypatch.setattr(module, "kb_match", self.match)
        if cases:
            monkeypatch.setattr(ivr.case_dialog, "lookup", self.lookup)
            monkeypatch.setattr(ivr.case_dialog, "verify", self.verify)
        return self

    async def match(self, hub_url, token, text, *, menu=None, asr_confidence=None, timeout=3.0) -> KbMatch:
        self.asked.append((text, menu, asr_confidence))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        reply = (self.kb or {}).get(text, {"decision": "handoff", "reason": "no entry close enough"})
        return KbMatch.model_validate({"query": text, **reply})

    async def lookup(self, hub, token, number, caller="", ticket=None, timeout=8.0) -> LookupReply:
        self.lookups.append({"number": number, "caller": caller, "ticket": ticket})
        return LookupReply.model_validate(self.lookup_reply(number, ticket))

    async def verify(self, hub, token, number, secret, caller="", call_id=None, timeout=8.0) -> VerifyReply:
        self.secrets.append(secret)
        return VerifyReply.model_validate(self.verify_reply(secret))

    def lookup_reply(self, number: str, ticket: str | None) -> dict:
        return {"result": "not_found", "say": "没有找到这个案件。"}

    def verify_reply(self, secret: str) -> dict:
        return {"result": "unavailable", "say": "案件系统暂时无法查询。"}
