"""Runs the menu on an answered call: the conversation a ``CallSession`` (the transport) is handed.

The session knows nothing of menus; the worker builds one of these per call with that call's services.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ivr.audio import PromptLibrary
from ivr.call_session import CallSession, Conversation
from ivr.flow.context import FlowContext
from ivr.flow.engine import run_flow
from ivr.flow.menu import Menu


def menu_conversation(menu: Menu, prompts: PromptLibrary, extra: dict[str, Any], max_duration_s: float) -> Conversation:
    """The menu's flow for one call, bounded by ``max_duration_s`` (TimeoutError: the session hangs up)."""

    async def converse(session: CallSession) -> str:
        ctx = FlowContext(channel=session, prompts=prompts, emit=session.emit, extra=dict(extra))
        outcome = await asyncio.wait_for(run_flow(menu, ctx), max_duration_s)
        return outcome.cause

    return converse
