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

import asyncio
import contextlib
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from ivr.audio import Clip
from ivr.cases_client import CasesUnreachable, caller_number, lookup, verify
from ivr.contract import DigitsReceived, PromptPlayed
from ivr.flow.outcomes import Goto, Hangup
from ivr.phrases import render, say, speak_parts, text_hash

if TYPE_CHECKING:
    from ivr.bridge import OperatorLeg
    from ivr.flow.context import FlowContext
    from ivr.verbs.case_check import CaseCheck
    from ivr.verbs.case_status import CaseStatus
    from ivr.verbs.judge_transfer import JudgeTransfer

log = structlog.get_logger(__name__)

CASE_KEY = "verified_case"  # ctx.extra: the case this call passed the check for
MASKED_KEY = "•"  # how a key of the secret is recorded
DIGIT_PROMPTS = {**{d: f"digit_{d}" for d in "0123456789"}, "*": "digit_star", "#": "digit_hash"}
_SEQ_RE = re.compile(r"\d+(?=号$)")


def mask_case(number: str) -> str:
    """（2026）粤0305民初1234号 → （2026）粤0305民初****号; a lookup number keeps its last 2 digits."""
    if _SEQ_RE.search(number or ""):
        return _SEQ_RE.sub(lambda m: "*" * len(m.group()), number)
    return "*" * max(0, len(number) - 2) + number[-2:]


@dataclass
class VerifiedCase:
    case_number: str
    ticket: str
    status_parts: list[str] = field(default_factory=list)
    brief: dict[str, Any] = field(default_factory=dict)  # CaseBrief: judge, department, judge_team_line …


def verified_case(ctx: FlowContext) -> VerifiedCase | None:
    vc = ctx.extra.get(CASE_KEY)
    return vc if isinstance(vc, VerifiedCase) else None


def _services(ctx: FlowContext) -> tuple[str | None, str | None, str]:
    return ctx.extra.get("hub_url"), ctx.extra.get("hub_token"), caller_number(ctx.extra.get("caller"))


# ------------------------------------------------------------------------------------ keypad


async def collect(ctx: FlowContext, prompts: list[str], *, limit: int, timeout: float, inter_digit: float,
                  masked: bool = False, terminator: str = "#") -> str:
    """Play ``prompts`` (a key stops them), then read keys until ``terminator``, ``limit`` keys or a pause.
    Every key is a DigitsReceived event (``•`` for each key of a masked entry)."""
    for name in prompts:
        if (await ctx.play(name, barge_in=True)).interrupted:
            break
    entry, wait = "", timeout
    while len(entry) < limit:
        got = await ctx.channel.next_digit(wait)
        if got is None:
            break
        key, method = got
        shown = key if key == terminator or not masked else MASKED_KEY
        ctx.emit(DigitsReceived, node=ctx.node, digits=shown, method=method)
        if key == terminator:
            break
        entry += key
        wait = inter_digit
    return entry


async def _entry(ctx: FlowContext, verb: CaseCheck, prompt: str, *, limit: int, masked: bool,
                 valid: re.Pattern[str]) -> str | None:
    """An entry matching ``valid``, asking again on silence or a bad entry; None after ``verb.retries``."""
    prompts = [prompt]
    for _ in range(verb.retries + 1):
        entry = await collect(ctx, prompts, limit=limit, timeout=verb.timeout, inter_digit=verb.inter_digit_timeout,
                              masked=masked)
        if entry and valid.fullmatch(entry):
            return entry
        ctx.channel.flush_digits()
        retry = verb.invalid_prompt if entry else verb.no_input_prompt
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
        got = await ctx.channel.next_digit(timeout)
        if got is not None:
            ctx.emit(DigitsReceived, node=ctx.node, digits=got[0], method=got[1])
            if got[0] in allowed:
                return got[0]
        ctx.channel.flush_digits()
        retry = no_input_prompt if got is None else invalid_prompt
        prompts = [p for p in (retry, prompt) if p]
    return None


# ------------------------------------------------------------------------------------ case_check

NUMBER_RE = re.compile(r"[0-9*]{4,30}")
SECRET_RE = re.compile(r"[0-9*]{4,20}")


async def _readback(ctx: FlowContext, verb: CaseCheck, reply: dict[str, Any], typed: str) -> None:
    """The hub's read-back in the voice; without the voice "您输入的是" and the typed keys one by one."""
    text = str(reply.get("readback") or "")
    clip = await render(ctx, text, f"case_readback:{text_hash(text)}") if text else None
    if clip is not None:
        await ctx.play_clip(clip, True, PromptPlayed, clip.name)
        return
    if verb.readback_fallback and (await ctx.play(verb.readback_fallback, barge_in=True)).interrupted:
        return
    parts = [ctx.prompts.get(DIGIT_PROMPTS[c]).pcm for c in typed if c in DIGIT_PROMPTS]
    if parts:
        gap = ctx.prompts.silence(0.08).pcm
        clip = Clip(f"digits:{len(typed)}", gap.join(parts), ctx.prompts.rate)
        await ctx.play_clip(clip, True, PromptPlayed, "say_digits")


async def _unavailable(ctx: FlowContext, verb: CaseCheck, said: str | None = None) -> Goto:
    ctx.channel.flush_digits()
    if said:
        await say(ctx, said, f"case_say:{said}", [verb.unavailable_prompt], barge_in=False)
    else:
        await ctx.play(verb.unavailable_prompt, barge_in=False)
    return Goto(verb.on_unavailable)


def _fail(verb: CaseCheck) -> Goto | Hangup:
    return Goto(verb.on_failure) if verb.on_failure else Hangup("no_valid_input")


async def _enter_case(ctx: FlowContext, verb: CaseCheck) -> tuple[str | None, Goto | Hangup | None]:
    """(the confirmed case number, None) or (None, where the flow goes instead)."""
    hub, token, caller = _services(ctx)
    for _ in range(verb.attempts):
        typed = await _entry(ctx, verb, verb.number_prompt, limit=30, masked=False, valid=NUMBER_RE)
        if typed is None:
            break
        try:
            reply = await lookup(hub, token, typed, caller)
        except CasesUnreachable as e:
            log.warning("cases_unreachable", call_id=ctx.channel.call_id, step="lookup", error=str(e))
            return None, await _unavailable(ctx, verb)
        result, said = reply.get("result"), str(reply.get("say") or "")
        log.info("case_lookup", call_id=ctx.channel.call_id, result=result,
                 case=mask_case(str(reply.get("case_number") or "")))
        if result == "unavailable":
            return None, await _unavailable(ctx, verb, said)
        if result != "found" or not reply.get("case_number"):
            ctx.channel.flush_digits()
            await say(ctx, said, f"case_say:{said}", [verb.invalid_prompt] if verb.invalid_prompt else [])
            continue
        await _readback(ctx, verb, reply, typed)
        key = await _key(ctx, verb.confirm_prompt, "12", verb.timeout, verb.retries, verb.invalid_prompt,
                         verb.no_input_prompt)
        if key == "1":
            return str(reply["case_number"]), None
        if key is None:
            break
        ctx.channel.flush_digits()
    if verb.failure_prompt:
        await ctx.play(verb.failure_prompt, barge_in=False)
    return None, _fail(verb)


async def check_case(ctx: FlowContext, verb: CaseCheck) -> Goto | Hangup | None:
    held = verified_case(ctx)
    if held is not None and verb.reuse:
        log.info("case_check_reused", call_id=ctx.channel.call_id, case=mask_case(held.case_number))
        return None
    hub, token, caller = _services(ctx)
    if not hub or not token:
        return await _unavailable(ctx, verb)
    number, outcome = await _enter_case(ctx, verb)
    if number is None:
        return outcome
    if held is not None and held.case_number == number:  # the case checked earlier in this call
        return None
    for _ in range(verb.max_secrets):
        secret = await _entry(ctx, verb, verb.secret_prompt, limit=20, masked=True, valid=SECRET_RE)
        if secret is None:
            if verb.failure_prompt:
                await ctx.play(verb.failure_prompt, barge_in=False)
            return _fail(verb)
        try:
            reply = await verify(hub, token, number, secret, caller, ctx.channel.call_id)
        except CasesUnreachable as e:
            log.warning("cases_unreachable", call_id=ctx.channel.call_id, step="verify", error=str(e))
            return await _unavailable(ctx, verb)
        result, said = reply.get("result"), str(reply.get("say") or "")
        log.info("case_verify", call_id=ctx.channel.call_id, result=result, case=mask_case(number),
                 tries_left=reply.get("tries_left"))
        if result == "ok" and reply.get("ticket"):
            ctx.extra[CASE_KEY] = VerifiedCase(str(reply.get("case_number") or number), str(reply["ticket"]),
                                               [str(p) for p in reply.get("status_parts") or []],
                                               dict(reply.get("case") or {}))
            return None
        if result == "locked":
            ctx.channel.flush_digits()
            await say(ctx, said, f"case_say:{said}", [verb.locked_prompt], barge_in=False)
            return Goto(verb.on_locked)
        if result != "wrong":  # unavailable, invalid, or ok without a ticket
            return await _unavailable(ctx, verb, said)
        ctx.channel.flush_digits()
        await say(ctx, said, f"case_say:{said}", [verb.wrong_prompt])
    return await _unavailable(ctx, verb)


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
            if reply.get("verified") and reply.get("status_parts"):
                vc.status_parts = [str(p) for p in reply["status_parts"]]
    return vc.status_parts


async def status_dialog(ctx: FlowContext, verb: CaseStatus) -> Goto | Hangup:
    vc = verified_case(ctx)
    if vc is None:
        log.warning("case_status_without_check", call_id=ctx.channel.call_id, node=ctx.node)
        return Goto(verb.on_operator)
    parts = vc.status_parts or await _fresh_parts(ctx, vc)
    ctx.channel.flush_digits()
    keys = verb.replay_key + verb.judge_key + verb.operator_key
    while True:
        spoken = await speak_parts(ctx, parts, "case_status")
        if spoken.failed and verb.no_voice_prompt:
            await ctx.play(verb.no_voice_prompt, barge_in=True)
        key = await _key(ctx, verb.menu_prompt, keys, verb.key_timeout_s, verb.retries, verb.invalid_prompt,
                         verb.no_input_prompt)
        if key is None:
            if verb.goodbye_prompt:
                await ctx.play(verb.goodbye_prompt, barge_in=False)
            return Hangup("case_status_done")
        if key == verb.judge_key:
            return Goto(verb.on_judge)
        if key == verb.operator_key:
            return Goto(verb.on_operator)
        ctx.channel.flush_digits()
        parts = await _fresh_parts(ctx, vc)  # 重听


# ------------------------------------------------------------------------------------ judge_transfer


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


async def transfer_to_judge(ctx: FlowContext, verb: JudgeTransfer) -> Hangup | None:
    """Bridge the caller to the judge's team line; None when there is none, it is after hours, or nobody
    answered (the flow goes on to the message)."""
    from ivr.bridge import OperatorLeg
    from ivr.contract import BridgeCommand

    vc = verified_case(ctx)
    target = judge_target(str(vc.brief.get("judge_team_line") or "") if vc else None, verb.domain)
    ch = ctx.channel
    hours = ctx.extra.get("working_hours")
    host = getattr(ch, "host", None)
    if target is None or host is None or not hasattr(ch, "cleanups"):
        return None
    if hours is not None and not hours.is_open():
        log.info("judge_transfer_after_hours", call_id=ch.call_id)
        return None
    ch.flush_digits()
    if verb.prompt:
        await ctx.play(verb.prompt, barge_in=False)
    events: asyncio.Queue[OperatorLeg] = asyncio.Queue()
    cmd = BridgeCommand(call_id=ch.call_id, offer_id=f"judge-{uuid.uuid4().hex[:12]}", target=target,
                        ring_timeout_s=verb.ring_timeout_s)
    leg = OperatorLeg(ch, cmd, host, ctx.node, events.put_nowait)

    def caller_gone() -> None:
        leg.caller_left(getattr(ch, "hangup_cause", None) or "caller_hangup")

    ch.cleanups.append(caller_gone)
    log.info("judge_transfer", call_id=ch.call_id, case=mask_case(vc.case_number if vc else ""))
    if leg.start():
        music = ctx.prompts.get(verb.hold_music)
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
    if verb.no_answer_prompt:
        await ctx.play(verb.no_answer_prompt, barge_in=False)
    return None


async def _talk(ctx: FlowContext, leg: OperatorLeg, events: asyncio.Queue) -> Hangup:
    """Caller and judge's team talk (both transcribed, recorded when the IVR records bridged calls)."""
    from ivr.queueing import _transcribe
    from ivr.recording import StereoRecorder, recordings_dir

    ch = ctx.channel
    tasks: list[asyncio.Task] = []
    url = ctx.extra.get("speech_url")
    if url and hasattr(ch, "audio_chunks"):
        tasks.append(asyncio.create_task(_transcribe(ctx, "caller", ch.audio_chunks(), url)))
        tasks.append(asyncio.create_task(_transcribe(ctx, "operator", leg.operator_chunks(), url)))
    recorder = None
    if ctx.extra.get("record_bridged_calls"):
        recorder = StereoRecorder(recordings_dir(ctx) / f"{ch.call_id}-judge.wav", ctx.prompts.rate)
        ch.audio_taps.append(recorder.caller)
        leg.taps.append(recorder.operator)
    try:
        while leg.state == "connected":
            await events.get()
        return Hangup("judge_team_hangup")
    finally:
        for t in tasks:
            t.cancel()
        if recorder is not None:
            with contextlib.suppress(ValueError):
                ch.audio_taps.remove(recorder.caller)
            leg.taps.clear()
            recorder.close()
