"""Self-service by case number (menus 1, 3 and 4): the case, the caller's identity, the status, the judge.

    case_check ─ verified earlier in this call (reuse) ──────────────────────────────────────▶ next verb
               ─ keypad: YEAR*COURT*TYPE*SEQ# or the lookup number# ─▶ hub lookup
                    ├─ invalid / not_found ─▶ the hub's sentence, enter again (``attempts``)
                    ├─ unavailable (or no hub) ─▶ the hub's apology ─▶ on_unavailable
                    └─ found ─▶ read-back (the voice; digit prompts without it), 1 confirm / 2 enter again
               ─ 查询密码 or last 6 of the ID number (``*`` = X)# ─▶ hub verify (it counts and locks)
                    ├─ wrong ─▶ "验证未通过，您还可以再试N次。", enter again
                    ├─ locked ─▶ the hub's sentence ─▶ on_locked
                    ├─ unavailable ─▶ the apology ─▶ on_unavailable
                    └─ ok ─▶ the case is held for the rest of the call (ticket, status, brief) ─▶ next verb
    case_status ─ the status sentence by sentence, then "重听请按星号键，联系法官请按3，人工服务请按0"
    judge_transfer ─ in working hours, to the case's judge_team_line through the operator-leg bridge;
                     otherwise or unanswered ─▶ next verb (the message)

The secret never leaves this module except to the hub: its keys are recorded as ``•`` on the call record and
no log line carries it; case numbers in log lines have their sequence starred.
"""

from __future__ import annotations

import re

import structlog
from pydantic import BaseModel, ConfigDict, Field

from ivr.audio import Clip
from ivr.cases_client import CasesUnreachable, VerifiedCase, caller_number, lookup, verify
from ivr.contract import PromptPlayed
from ivr.flow.context import FlowContext
from ivr.flow.outcomes import Goto, Hangup
from ivr.hub_api import LookupReply
from ivr.keypad import EntryOptions, collect_keys, read_key
from ivr.phrases import render, say, speak_parts, text_hash

log = structlog.get_logger(__name__)

DIGIT_PROMPTS = {**{d: f"digit_{d}" for d in "0123456789"}, "*": "digit_star", "#": "digit_hash"}
_SEQ_RE = re.compile(r"\d+(?=号$)")


class CaseCheckOptions(BaseModel):
    """What the case check needs of a ``case_check`` verb (its YAML arguments; ivr/verbs/case_check.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on_locked: str
    on_unavailable: str
    on_failure: str | None = Field(None, description="after too many wrong or missing entries (default: hang up)")
    reuse: bool = True
    number_prompt: str = "case_number_enter"
    secret_prompt: str = "case_secret_enter"
    confirm_prompt: str = "confirm_or_retry"
    readback_fallback: str | None = "you_entered"
    unavailable_prompt: str = "case_unavailable"
    locked_prompt: str = "case_locked"
    wrong_prompt: str = "case_wrong_secret"
    invalid_prompt: str | None = "invalid_input"
    no_input_prompt: str | None = "no_input"
    failure_prompt: str | None = "too_many_retries"
    attempts: int = Field(3, ge=1, le=10, description="case numbers the caller may enter (not found, re-enter)")
    max_secrets: int = Field(5, ge=1, le=20, description="a bound on secrets per check; the hub locks first")
    retries: int = Field(2, ge=0, le=5, description="extra prompts after silence or a malformed entry")
    timeout: float = Field(8.0, gt=0, le=60, description="seconds to wait for the first key")
    inter_digit_timeout: float = Field(5.0, gt=0, le=60)


class CaseStatusOptions(BaseModel):
    """What the status dialogue needs of a ``case_status`` verb (its YAML arguments; ivr/verbs/case_status.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on_judge: str
    on_operator: str
    menu_prompt: str = "case_status_menu"
    no_voice_prompt: str | None = "case_status_no_voice"
    goodbye_prompt: str | None = "goodbye"
    invalid_prompt: str | None = "invalid_input"
    no_input_prompt: str | None = "no_input"
    replay_key: str = "*"
    judge_key: str = "3"
    operator_key: str = "0"
    key_timeout_s: float = Field(6.0, gt=0, le=30)
    retries: int = Field(1, ge=0, le=5)


def mask_case(number: str) -> str:
    """（2026）粤0305民初1234号 → （2026）粤0305民初****号; a lookup number keeps its last 2 digits."""
    if _SEQ_RE.search(number or ""):
        return _SEQ_RE.sub(lambda m: "*" * len(m.group()), number)
    return "*" * max(0, len(number) - 2) + number[-2:]


def verified_case(ctx: FlowContext) -> VerifiedCase | None:
    return ctx.verified_case


def _services(ctx: FlowContext) -> tuple[str | None, str | None, str]:
    return ctx.services.hub_url, ctx.services.hub_token, caller_number(ctx.services.caller)


# ------------------------------------------------------------------------------------ keypad


async def _entry(ctx: FlowContext, opts: CaseCheckOptions, prompt: str, *, limit: int, masked: bool,
                 valid: re.Pattern[str]) -> str | None:
    """An entry matching ``valid``, asking again on silence or a bad entry; None after ``opts.retries``."""
    prompts = [prompt]
    for _ in range(opts.retries + 1):
        entry = await collect_keys(ctx, prompts, EntryOptions(limit, opts.timeout, opts.inter_digit_timeout,
                                                              masked=masked))
        if entry and valid.fullmatch(entry):
            return entry
        ctx.channel.flush_digits()
        retry = opts.invalid_prompt if entry else opts.no_input_prompt
        prompts = [p for p in (retry, prompt) if p]
    return None


async def _key(ctx: FlowContext, prompt: str | None, allowed: str, timeout: float, retries: int,
               invalid_prompt: str | None, no_input_prompt: str | None) -> str | None:
    """One key of ``allowed`` after ``prompt`` (a key pressed earlier counts); None after the retries."""
    prompts = [prompt] if prompt else []
    for _ in range(retries + 1):
        for name in prompts:
            if (await ctx.play(name, barge_in=True)).interrupted:
                break
        key = await read_key(ctx, timeout)
        if key is not None and key in allowed:
            return key
        ctx.channel.flush_digits()
        retry = no_input_prompt if key is None else invalid_prompt
        prompts = [p for p in (retry, prompt) if p]
    return None


# ------------------------------------------------------------------------------------ case_check

NUMBER_RE = re.compile(r"[0-9*]{4,30}")
SECRET_RE = re.compile(r"[0-9*]{4,20}")


async def _readback(ctx: FlowContext, opts: CaseCheckOptions, reply: LookupReply, typed: str) -> None:
    """The hub's read-back in the voice; without the voice "您输入的是" and the typed keys one by one."""
    text = reply.readback or ""
    clip = await render(ctx, text, f"case_readback:{text_hash(text)}") if text else None
    if clip is not None:
        await ctx.play_clip(clip, True, PromptPlayed, clip.name)
        return
    if opts.readback_fallback and (await ctx.play(opts.readback_fallback, barge_in=True)).interrupted:
        return
    parts = [ctx.prompts.get(DIGIT_PROMPTS[c]).pcm for c in typed if c in DIGIT_PROMPTS]
    if parts:
        gap = ctx.prompts.silence(0.08).pcm
        clip = Clip(f"digits:{len(typed)}", gap.join(parts), ctx.prompts.rate)
        await ctx.play_clip(clip, True, PromptPlayed, "say_digits")


async def _unavailable(ctx: FlowContext, opts: CaseCheckOptions, said: str | None = None) -> Goto:
    ctx.channel.flush_digits()
    if said:
        await say(ctx, said, f"case_say:{said}", [opts.unavailable_prompt], barge_in=False)
    else:
        await ctx.play(opts.unavailable_prompt, barge_in=False)
    return Goto(opts.on_unavailable)


def _fail(opts: CaseCheckOptions) -> Goto | Hangup:
    return Goto(opts.on_failure) if opts.on_failure else Hangup("no_valid_input")


async def _enter_case(ctx: FlowContext, opts: CaseCheckOptions) -> tuple[str | None, Goto | Hangup | None]:
    """(the confirmed case number, None) or (None, where the flow goes instead)."""
    hub, token, caller = _services(ctx)
    for _ in range(opts.attempts):
        typed = await _entry(ctx, opts, opts.number_prompt, limit=30, masked=False, valid=NUMBER_RE)
        if typed is None:
            break
        try:
            reply = await lookup(hub, token, typed, caller)
        except CasesUnreachable as e:
            log.warning("cases_unreachable", call_id=ctx.channel.call_id, step="lookup", error=str(e))
            return None, await _unavailable(ctx, opts)
        result, said = reply.result, reply.say
        log.info("case_lookup", call_id=ctx.channel.call_id, result=result,
                 case=mask_case(reply.case_number or ""))
        if result == "unavailable":
            return None, await _unavailable(ctx, opts, said)
        if result != "found" or not reply.case_number:
            ctx.channel.flush_digits()
            await say(ctx, said, f"case_say:{said}", [opts.invalid_prompt] if opts.invalid_prompt else [])
            continue
        await _readback(ctx, opts, reply, typed)
        key = await _key(ctx, opts.confirm_prompt, "12", opts.timeout, opts.retries, opts.invalid_prompt,
                         opts.no_input_prompt)
        if key == "1":
            return reply.case_number, None
        if key is None:
            break
        ctx.channel.flush_digits()
    if opts.failure_prompt:
        await ctx.play(opts.failure_prompt, barge_in=False)
    return None, _fail(opts)


async def check_case(ctx: FlowContext, opts: CaseCheckOptions) -> Goto | Hangup | None:
    held = verified_case(ctx)
    if held is not None and opts.reuse:
        log.info("case_check_reused", call_id=ctx.channel.call_id, case=mask_case(held.case_number))
        return None
    hub, token, caller = _services(ctx)
    if not hub or not token:
        return await _unavailable(ctx, opts)
    number, outcome = await _enter_case(ctx, opts)
    if number is None:
        return outcome
    if held is not None and held.case_number == number:  # the case checked earlier in this call
        return None
    for _ in range(opts.max_secrets):
        secret = await _entry(ctx, opts, opts.secret_prompt, limit=20, masked=True, valid=SECRET_RE)
        if secret is None:
            if opts.failure_prompt:
                await ctx.play(opts.failure_prompt, barge_in=False)
            return _fail(opts)
        try:
            reply = await verify(hub, token, number, secret, caller, ctx.channel.call_id)
        except CasesUnreachable as e:
            log.warning("cases_unreachable", call_id=ctx.channel.call_id, step="verify", error=str(e))
            return await _unavailable(ctx, opts)
        result, said = reply.result, reply.say
        log.info("case_verify", call_id=ctx.channel.call_id, result=result, case=mask_case(number),
                 tries_left=reply.tries_left)
        if result == "ok" and reply.ticket:
            ctx.verified_case = VerifiedCase(reply.case_number or number, reply.ticket, list(reply.status_parts),
                                             reply.case.model_dump() if reply.case else {})
            return None
        if result == "locked":
            ctx.channel.flush_digits()
            await say(ctx, said, f"case_say:{said}", [opts.locked_prompt], barge_in=False)
            return Goto(opts.on_locked)
        if result != "wrong":  # unavailable, invalid, or ok without a ticket
            return await _unavailable(ctx, opts, said)
        ctx.channel.flush_digits()
        await say(ctx, said, f"case_say:{said}", [opts.wrong_prompt])
    return await _unavailable(ctx, opts)


# ------------------------------------------------------------------------------------ case_status


async def _fresh_parts(ctx: FlowContext, vc: VerifiedCase) -> list[str]:
    """The status again from the hub (the ticket proves the check); what the check said when it cannot."""
    hub, token, caller = _services(ctx)
    if hub and token:
        try:
            reply = await lookup(hub, token, vc.case_number, caller, vc.ticket)
        except CasesUnreachable as e:
            log.warning("cases_unreachable", call_id=ctx.channel.call_id, step="status", error=str(e))
        else:
            if reply.verified and reply.status_parts:
                vc.status_parts = list(reply.status_parts)
    return vc.status_parts


async def status_dialog(ctx: FlowContext, opts: CaseStatusOptions) -> Goto | Hangup:
    vc = verified_case(ctx)
    if vc is None:
        log.warning("case_status_without_check", call_id=ctx.channel.call_id, node=ctx.node)
        return Goto(opts.on_operator)
    parts = vc.status_parts or await _fresh_parts(ctx, vc)
    ctx.channel.flush_digits()
    keys = opts.replay_key + opts.judge_key + opts.operator_key
    while True:
        spoken = await speak_parts(ctx, parts, "case_status")
        if spoken.failed and opts.no_voice_prompt:
            await ctx.play(opts.no_voice_prompt, barge_in=True)
        key = await _key(ctx, opts.menu_prompt, keys, opts.key_timeout_s, opts.retries, opts.invalid_prompt,
                         opts.no_input_prompt)
        if key is None:
            if opts.goodbye_prompt:
                await ctx.play(opts.goodbye_prompt, barge_in=False)
            return Hangup("case_status_done")
        if key == opts.judge_key:
            return Goto(opts.on_judge)
        if key == opts.operator_key:
            return Goto(opts.on_operator)
        ctx.channel.flush_digits()
        parts = await _fresh_parts(ctx, vc)  # 重听
