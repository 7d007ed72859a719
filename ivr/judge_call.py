"""The ``judge_transfer`` verb's call: the caller connected to the checked case's judge's team line.

The worker dials the line itself and joins the calls in its conference bridge (the operator leg, ivr/bridge.py);
the caller hears hold music while it rings. None (the flow goes on to the message) when there is no line, it is
after hours, or nobody answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid

import structlog
from pydantic import BaseModel, ConfigDict, Field

from ivr.bridge import OperatorLeg
from ivr.bridged import end_talk, start_talk
from ivr.case_dialog import mask_case, verified_case
from ivr.contract import BridgeCommand
from ivr.flow.context import FlowContext
from ivr.flow.outcomes import Hangup

log = structlog.get_logger(__name__)


class JudgeTransferOptions(BaseModel):
    """What the transfer needs of a ``judge_transfer`` verb (its YAML arguments; ivr/verbs/judge_transfer.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str | None = "judge_transfer_connecting"
    no_answer_prompt: str | None = "judge_no_answer"
    hold_music: str = "hold_music"
    ring_timeout_s: float = Field(20.0, gt=0, le=120)
    domain: str | None = Field(None, description="SIP domain for a team line that is a bare extension")



def judge_target(line: str | None, domain: str | None) -> str | None:
    """A SIP URI for the judge's team line: a URI as it is, a bare extension at ``domain``."""
    line = (line or "").strip()
    if not line:
        return None
    if line.startswith(("sip:", "sips:")):
        return line
    if domain and re.fullmatch(r"[0-9*#+]{2,32}", line):
        return f"sip:{line}@{domain}"
    return None


async def transfer_to_judge(ctx: FlowContext, opts: JudgeTransferOptions) -> Hangup | None:
    """Bridge the caller to the judge's team line; None when there is none, it is after hours, or nobody
    answered (the flow goes on to the message)."""
    vc = verified_case(ctx)
    target = judge_target(str(vc.brief.get("judge_team_line") or "") if vc else None, opts.domain)
    ch = ctx.channel
    hours = ctx.services.working_hours
    host = ch.host
    if target is None or host is None:
        return None
    if hours is not None and not hours.is_open():
        log.info("judge_transfer_after_hours", call_id=ch.call_id)
        return None
    ch.flush_digits()
    if opts.prompt:
        await ctx.play(opts.prompt, barge_in=False)
    events: asyncio.Queue[OperatorLeg] = asyncio.Queue()
    cmd = BridgeCommand(call_id=ch.call_id, offer_id=f"judge-{uuid.uuid4().hex[:12]}", target=target,
                        ring_timeout_s=opts.ring_timeout_s)
    leg = OperatorLeg(ch, cmd, host, ctx.node, events.put_nowait)

    def caller_gone() -> None:
        leg.caller_left(ch.hangup_cause or "caller_hangup")

    ch.cleanups.append(caller_gone)
    log.info("judge_transfer", call_id=ch.call_id, case=mask_case(vc.case_number if vc else ""))
    if leg.start():
        music = ctx.prompts.get(opts.hold_music)
        player: asyncio.Task | None = None
        try:
            while leg.state == "dialing":
                if player is None or player.done():
                    player = asyncio.create_task(ctx.play_clip(music, False))
                got = asyncio.create_task(events.get())
                await asyncio.wait({player, got}, return_when=asyncio.FIRST_COMPLETED)
                if not got.done():
                    got.cancel()
        finally:
            if player is not None and not player.done():
                ch.stop_prompt()
                with contextlib.suppress(asyncio.CancelledError):
                    await player
        if leg.state == "connected":
            return await _talk(ctx, leg, events)
    log.info("judge_not_reached", call_id=ch.call_id, reason=leg.reason)
    ch.flush_digits()
    if opts.no_answer_prompt:
        await ctx.play(opts.no_answer_prompt, barge_in=False)
    return None


async def _talk(ctx: FlowContext, leg: OperatorLeg, events: asyncio.Queue) -> Hangup:
    """Caller and judge's team talk (both transcribed, recorded when the IVR records bridged calls)."""
    talk = start_talk(ctx, leg, "judge")
    try:
        while leg.state == "connected":
            await events.get()
        return Hangup("judge_team_hangup")
    finally:
        end_talk(ctx, talk)
