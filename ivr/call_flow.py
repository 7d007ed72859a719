"""Runs the menu on an answered call: the conversation a ``CallSession`` (the transport) is handed.

The session knows nothing of menus; the worker builds one of these per call with that call's services.
"""

from __future__ import annotations

import asyncio

from ivr.audio import PromptLibrary
from ivr.call_session import CallSession, Conversation
from ivr.flow.context import FlowContext
from ivr.flow.engine import run_flow
from ivr.flow.menu import Menu
from ivr.flow.services import CallServices


def menu_conversation(menu: Menu, prompts: PromptLibrary, services: CallServices,
                      max_duration_s: float) -> Conversation:
    """The menu's flow for one call, bounded by ``max_duration_s`` (TimeoutError: the session hangs up)."""

    async def converse(session: CallSession) -> str:
        ctx = FlowContext(channel=session, prompts=prompts, emit=session.emit, services=services)
        outcome = await asyncio.wait_for(run_flow(menu, ctx), max_duration_s)
        return outcome.cause

    return converse
