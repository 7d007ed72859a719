"""Issue 15 (Low): ``ivr.max_call_duration_s`` caps time in the IVR's menus, not a conversation with a person.

The conversation a worker hands each call (ivr/call_flow.py) around a stand-in flow: one that talks with a bridged
operator (ivr/bridged.py start_talk/end_talk) longer than the cap ends by itself; one that stays in menus past the
cap is cut (TimeoutError: the session hangs up with cause max_duration)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

import ivr.call_flow as call_flow
from ivr.audio import PromptLibrary
from ivr.bridged import end_talk, start_talk
from ivr.flow.services import CallServices
from ivr.settings import BUNDLED_PROMPTS
from tests.fakes import FakeChannel

CAP_S = 1.0


@pytest.fixture(autouse=True)
def _fine_clock(monkeypatch):
    monkeypatch.setattr(call_flow, "RECHECK_S", 0.05, raising=False)


async def _converse(flow) -> tuple[str | None, float]:
    converse = call_flow.menu_conversation(None, PromptLibrary(BUNDLED_PROMPTS, 8000), CallServices(), CAP_S)
    t0 = time.monotonic()
    try:
        return await converse(FakeChannel()), time.monotonic() - t0
    except TimeoutError:
        return None, time.monotonic() - t0


async def test_talking_with_an_operator_longer_than_the_cap_is_not_cut(monkeypatch):
    async def flow(menu, ctx):
        await asyncio.sleep(0.3)  # menus
        talk = start_talk(ctx, SimpleNamespace(taps=[]), "bridged")
        await asyncio.sleep(2.0)  # twice the cap with the operator
        end_talk(ctx, talk)
        await asyncio.sleep(0.2)  # back in the menus: 0.5 s of IVR time in all
        return SimpleNamespace(cause="caller_hangup")

    monkeypatch.setattr(call_flow, "run_flow", flow)
    cause, took = await _converse(flow)
    assert cause == "caller_hangup" and took > 2.4, (cause, took)


@pytest.mark.parametrize("talk_first", [False, True])
async def test_menus_past_the_cap_are_cut(monkeypatch, talk_first):
    async def flow(menu, ctx):
        if talk_first:  # a talk does not use up the cap, nor reset it
            talk = start_talk(ctx, SimpleNamespace(taps=[]), "bridged")
            await asyncio.sleep(0.5)
            end_talk(ctx, talk)
        await asyncio.sleep(30)
        return SimpleNamespace(cause="never")

    monkeypatch.setattr(call_flow, "run_flow", flow)
    cause, took = await _converse(flow)
    assert cause is None and CAP_S + (0.5 if talk_first else 0) - 0.1 < took < CAP_S + 1.8, took
