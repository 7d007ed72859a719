"""Runs the menu on an answered call: the conversation a ``CallSession`` (the transport) is handed.

The session knows nothing of menus; the worker builds one of these per call with that call's services.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from ivr.audio import PromptLibrary
from ivr.call_session import CallSession, Conversation
from ivr.flow.context import FlowContext
from ivr.flow.engine import run_flow
from ivr.flow.menu import Menu
from ivr.flow.services import CallServices

T = TypeVar("T")
RECHECK_S = 1.0  # how often the IVR-time clock looks whether someone is bridged in (its error at most)


def menu_conversation(menu: Menu, prompts: PromptLibrary, services: CallServices,
                      max_duration_s: float) -> Conversation:
    """The menu's flow for one call, bounded by ``max_duration_s`` in the IVR (TimeoutError: the session hangs up).
    Time talking with an operator or a judge's team does not count: the cap is for callers stuck in menus."""

    async def converse(session: CallSession) -> str:
        ctx = FlowContext(channel=session, prompts=prompts, emit=session.emit, services=services)
        outcome = await ivr_time_bounded(run_flow(menu, ctx), ctx, max_duration_s, RECHECK_S)
        return outcome.cause

    return converse


async def ivr_time_bounded(flow: Coroutine[Any, Any, T], ctx: FlowContext, max_ivr_s: float,
                           recheck_s: float = RECHECK_S) -> T:
    """``flow``'s result, or TimeoutError (``flow`` cancelled) once it has spent ``max_ivr_s`` with nobody bridged
    in (``ctx.talking`` 0), looked at every ``recheck_s``; while someone is bridged in, the clock stands."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(flow)
    spent, last = 0.0, loop.time()
    try:
        while True:
            await asyncio.wait({task}, timeout=min(recheck_s, max(0.0, max_ivr_s - spent)))
            now = loop.time()
            if not ctx.talking:
                spent += now - last
            last = now
            if task.done():
                return task.result()
            if spent >= max_ivr_s:
                raise TimeoutError
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
