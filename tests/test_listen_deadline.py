"""Issue 15 (Low): a ``listen`` turn has an end-to-end deadline. A speech service that takes the caller's stream and
never answers (a stuck decode queue) no longer holds the call: after the no-input time, the longest utterance and
``LISTEN_GRACE_S`` the turn ends as if the service were down (SpeechHeard ``unavailable``; the menu's fallback)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import ivr.listening as listening
from ivr.audio import PromptLibrary
from ivr.contract import SpeechHeard
from ivr.flow.context import FlowContext
from ivr.flow.services import CallServices
from ivr.settings import BUNDLED_PROMPTS
from tests.fake_speech import FakeSpeech
from tests.fakes import FakeChannel


class Talking(FakeChannel):
    """A caller whose audio (silence, 20 ms frames) goes on for as long as it is read."""

    hears = True

    async def audio_chunks(self) -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(0.02)
            yield b"\0" * 320


async def test_a_speech_service_that_never_answers_does_not_hold_the_turn(monkeypatch):
    monkeypatch.setattr(listening, "LISTEN_GRACE_S", 0.5, raising=False)
    speech = FakeSpeech().start()  # holds every stream open without a word
    try:
        events: list[tuple[type, dict]] = []
        ctx = FlowContext(channel=Talking(), prompts=PromptLibrary(BUNDLED_PROMPTS, 8000), node="consult",
                          services=CallServices(speech_url=speech.url),
                          emit=lambda cls, **kw: events.append((cls, kw)))
        options = listening.ListenOptions(no_input_timeout_s=0.5, max_utterance_s=1.0, beep=False)
        t0 = time.monotonic()
        heard = await asyncio.wait_for(listening.listen_once(ctx, options, []), 15)
        took = time.monotonic() - t0
    finally:
        speech.stop()
    assert heard.kind == "unavailable" and 1.9 < took < 6, (heard, took)
    assert [kw["kind"] for cls, kw in events if cls is SpeechHeard] == ["unavailable"]

