"""Walks a menu's verbs for one call until a verb hangs up (or the caller does)."""

from __future__ import annotations

import structlog

from ivr.contract import MenuEntered
from ivr.flow.context import FlowContext
from ivr.flow.menu import Menu
from ivr.flow.outcomes import Goto, Hangup, Repeat

log = structlog.get_logger(__name__)

MAX_NODE_VISITS = 200  # a menu loop with no caller progress ends rather than running forever


async def run_flow(menu: Menu, ctx: FlowContext) -> Hangup:
    node = menu.start
    visits = 0
    while True:
        visits += 1
        if visits > MAX_NODE_VISITS:
            log.warning("flow_loop_limit", call_id=ctx.channel.call_id, node=node)
            return Hangup("flow_loop_limit")
        ctx.node = node
        ctx.emit(MenuEntered, node=node)
        outcome = None
        for verb in menu.nodes[node]:
            ctx.steps += 1
            outcome = await verb.run(ctx)
            if outcome is not None:
                break
        if outcome is None:
            return Hangup("menu_end")
        if isinstance(outcome, Hangup):
            return outcome
        if isinstance(outcome, Goto):
            node = outcome.node
        elif isinstance(outcome, Repeat):
            ctx.channel.flush_digits()
