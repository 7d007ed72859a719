"""回访: the worker's outbound call to a citizen for a ``CallbackCommand`` from the hub.

    dial target (the operator leg's account; one of the worker's call slots) ── CallOffered outbound
      ├─ busy 486/600 · declined 603 · no answer 408/480 or ring_timeout_s · other failure
      │     ─▶ CallbackOutcome busy | rejected | no_answer | failed (status code), CallEnded with the same cause
      └─ answered ─▶ CallAnswered
            "您好，这里是12368诉讼服务热线，就您反映的问题进行回访。"   (the summary renders meanwhile)
            "承办部门的答复是：" + the summary in the speech service's voice, sentence by sentence
                 (voice down: "承办部门已经对您反映的问题作出了答复。")
            "请对办理结果进行评价：非常满意请按5 … 非常不满意请按1" (+ "您也可以直接说满意或不满意。" with the
                 speech service: a spoken 五 / 满意 / 不满意 … counts too); keys pressed before it are dropped;
                 wrong key or silence: the retry prompt and the question again (2 retries)
            ├─ 1-5 ─▶ CallbackOutcome rated (keypad | speech), "感谢您的评价，再见。", hang up
            └─ none ─▶ CallbackOutcome no_rating, "感谢您的接听，再见。", hang up  (also when the citizen hangs up)

An after-hours callback (``purpose`` after_hours, the call promised to a caller who left a message): "您好，这里是
12368诉讼服务热线，您在非工作时间的留言我们已经收到。", then the handler's answer as above when the order has one,
else "您反映的事项已经登记为工单，正在转交承办部门办理…", "如有其他问题，欢迎在工作时间拨打12368。感谢您的接听，再见。";
no rating. Answered (even if the citizen hangs up early) → CallbackOutcome reached.

Exactly one ``CallbackOutcome`` per command. The call has a call record like any other (direction outbound,
its prompts, digits and speech, node ``callback`` / ``callback_rating``); the summary's sentences are named by a
hash of their text, not the text.
"""

from __future__ import annotations

import asyncio
import contextlib
import re

import pjsua2 as pj
import structlog

from ivr import phrases
from ivr.audio import Clip, PromptLibrary
from ivr.call_session import CallSession
from ivr.contract import (
    CallAnswered,
    CallbackCommand,
    CallbackOutcome,
    CallEnded,
    CallOffered,
    DigitsReceived,
    MenuEntered,
    PromptPlayed,
)
from ivr.flow.context import FlowContext
from ivr.flow.services import CallServices
from ivr.keypad import read_key
from ivr.listening import ListenOptions, listen_once

log = structlog.get_logger(__name__)

#: final SIP responses of the citizen's phone -> outcome (others: failed)
UNANSWERED = {486: "busy", 600: "busy", 603: "rejected", 408: "no_answer", 480: "no_answer", 487: "no_answer"}
RETRIES = 2
NO_INPUT_S = 6.0
MAX_CALL_S = 300.0
SUMMARY_SPLIT = re.compile(r"(?<=[。！？；!?;\n])")
LONG_PART = 60  # a longer sentence is split at its commas (each renders on its own, the first sooner)
#: spoken ratings, longest words first ("不满意" before "满意")
RATING_WORDS = (("非常不满意", 1), ("很不满意", 1), ("特别不满意", 1), ("极不满意", 1), ("不太满意", 2),
                ("不满意", 2), ("非常满意", 5), ("很满意", 5), ("特别满意", 5), ("比较满意", 4), ("满意", 4),
                ("一般", 3), ("还行", 3), ("还可以", 3))
NUMERALS = {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_SCORE = re.compile(r"([1-5一二两三四五])分")
_ONE = re.compile(r"^(?:按|选|打|给)?([1-5一二两三四五])(?:分|星|号)?$")
_PUNCT = re.compile(r"[\s，。！？、,.!?：:；;]")


def rating_from_speech(text: str) -> int | None:
    """The rating 1-5 in what the citizen said: 满意 / 不满意 / 一般 …, "五分", or a lone numeral; None if none."""
    t = _PUNCT.sub("", text)
    if not t:
        return None
    for word, n in RATING_WORDS:
        if word in t:
            return n
    m = _SCORE.search(t) or _ONE.match(t)
    return NUMERALS[m.group(1)] if m else None


def summary_parts(summary: str) -> list[str]:
    """Sentences of the summary; a long one cut at its commas."""
    out: list[str] = []
    for sentence in (s.strip() for s in SUMMARY_SPLIT.split(summary)):
        while len(sentence) > LONG_PART:
            cut = max(sentence.rfind(c, 0, LONG_PART) for c in "，,、")
            if cut <= 0:
                break
            out.append(sentence[:cut + 1])
            sentence = sentence[cut + 1:].strip()
        if sentence:
            out.append(sentence)
    return out


def unanswered_outcome(status_code: int | None, ring_timed_out: bool) -> str:
    return "no_answer" if ring_timed_out else UNANSWERED.get(status_code or 0, "failed")


class CallbackSession(CallSession):
    """An outbound call for one ``CallbackCommand``; the worker keeps it in its sessions (a call slot)."""

    FAILED_LOG = "callback_failed"

    def __init__(self, call, cmd: CallbackCommand, prompts: PromptLibrary, services: CallServices, *args, **kwargs):
        super().__init__(call, cmd.call_id, *args, **kwargs)
        self.cmd = cmd
        self.prompts = prompts
        self.services = services
        self.answered = False
        self.reported = False
        self.ring_timed_out = False
        self._ring_timer: asyncio.TimerHandle | None = None
        self._unanswered = ""

    # ---- placing the call (the worker, on the loop) --------------------------------------------
    def dial(self, caller: str, source: str) -> bool:
        """Call the citizen; False when pjsua refuses at once (reported, and the call closed)."""
        try:
            self.call.makeCall(self.cmd.target, pj.CallOpParam(True))
        except pj.Error as e:
            log.warning("callback_dial_failed", call_id=self.call_id, order=self.cmd.order_number, error=e.info())
            self.emit_offered(caller, source, "")
            self.report("failed", reason=f"dial_error: {e.reason}"[:200])
            self._unanswered = "dial_error"
            self.ended = True
            self.port.detach_audio()
            self.emit(CallEnded, cause="dial_error", side="system", media=self.port.stats)
            self._on_closed(self)
            return False
        ci = self.call.getInfo()
        self.emit_offered(caller, source, ci.callIdString)
        self._ring_timer = self.loop.call_later(self.cmd.ring_timeout_s, self._ring_timeout)
        log.info("callback_dialing", call_id=self.call_id, order=self.cmd.order_number, attempt=self.cmd.attempt,
                 target=self.cmd.target)
        return True

    def emit_offered(self, caller: str, source: str, sip_call_id: str) -> None:
        self.emit(CallOffered, caller=caller, callee=self.cmd.target, source=source, sip_call_id=sip_call_id,
                  direction="outbound")

    def _ring_timeout(self) -> None:
        self._ring_timer = None
        if not self.answered and not self.ended:
            log.info("callback_no_answer", call_id=self.call_id, order=self.cmd.order_number)
            self.ring_timed_out = True
            with contextlib.suppress(pj.Error):
                self.call.hangup(pj.CallOpParam(True))

    def report(self, outcome: str, **fields) -> None:
        """The one ``CallbackOutcome`` of this command."""
        if self.reported:
            return
        self.reported = True
        self.emit(CallbackOutcome, order_id=self.cmd.order_id, attempt=self.cmd.attempt, outcome=outcome, **fields)
        log.info("callback_outcome", call_id=self.call_id, order=self.cmd.order_number, outcome=outcome,
                 rating=fields.get("rating"), method=fields.get("method"), status=fields.get("status_code"))

    # ---- pjsua callbacks (main thread) ---------------------------------------------------------
    def on_confirmed(self) -> None:
        if not self.answered:
            self.answered = True
            if self._ring_timer is not None:
                self._ring_timer.cancel()
                self._ring_timer = None
            self.emit(CallAnswered)
        super().on_confirmed()

    def on_disconnected(self, status_code: int, reason: str) -> None:
        if self._ring_timer is not None:
            self._ring_timer.cancel()
            self._ring_timer = None
        if not self.answered:
            outcome = unanswered_outcome(status_code, self.ring_timed_out)
            self._unanswered = outcome
            code = 408 if self.ring_timed_out else (status_code or None)
            self.report(outcome, status_code=code, reason="" if outcome != "failed" else reason[:200])
        else:
            self.report("reached" if self.cmd.purpose == "after_hours" else "no_rating")
        super().on_disconnected(status_code, reason)

    def end_cause(self, status_code: int) -> tuple[str, str]:
        if not self.answered:
            return self._unanswered or "failed", "system"
        return super().end_cause(status_code)

    # ---- the conversation -----------------------------------------------------------------------
    async def converse(self) -> str:
        ctx = FlowContext(channel=self, prompts=self.prompts, emit=self.emit, node="callback",
                          services=self.services)
        return await asyncio.wait_for(converse(ctx, self.cmd, self.report), MAX_CALL_S)


async def converse(ctx: FlowContext, cmd: CallbackCommand, report) -> str:
    """Greeting, summary, rating (an after-hours callback: greeting, the answer or that it is being handled, no
    rating); returns the hang-up cause."""
    ctx.emit(MenuEntered, node="callback")
    after_hours = cmd.purpose == "after_hours"
    parts = summary_parts(cmd.summary) if ctx.services.speech_url else []
    first = asyncio.create_task(phrases.render(ctx, parts[0], _label(0, parts[0]))) if parts else None
    try:
        await ctx.play("callback_after_hours" if after_hours else "callback_greeting", barge_in=False)
        if after_hours and not cmd.summary.strip():
            await ctx.play("callback_after_hours_pending", barge_in=False)
        else:
            await speak_summary(ctx, parts, first)
    finally:
        if first is not None and not first.done():
            first.cancel()
    if after_hours:
        report("reached")
        await ctx.play("callback_after_hours_bye", barge_in=False)
        return "callback_reached"
    ctx.node = "callback_rating"
    ctx.emit(MenuEntered, node=ctx.node)
    ctx.channel.flush_digits()  # keys pressed before the question are not a rating
    rating, method = await ask_rating(ctx)
    if rating is not None:
        report("rated", rating=rating, method=method)
        await ctx.play("callback_thanks", barge_in=False)
        return "callback_rated"
    report("no_rating")
    await ctx.play("callback_bye", barge_in=False)
    return "callback_no_rating"


def _label(i: int, text: str) -> str:
    return f"callback_summary:{i + 1}:{phrases.text_hash(text)}"


async def speak_summary(ctx: FlowContext, parts: list[str], first: asyncio.Task[Clip | None] | None) -> int:
    """The lead and the summary's sentences (the next renders while one plays); the fixed sentence instead when
    the voice cannot speak the first. Returns the sentences played."""
    clip = await first if first is not None else None
    if clip is None:
        await ctx.play("callback_no_summary", barge_in=False)
        return 0
    await ctx.play("callback_summary_lead", barge_in=False)
    played = 0
    pending: asyncio.Task[Clip | None] | None = None
    try:
        for i in range(len(parts)):
            if i:
                clip = await pending
                if clip is None:  # the voice failed part-way: go on to the question
                    log.warning("callback_summary_cut", call_id=ctx.channel.call_id, played=played, of=len(parts))
                    break
            pending = (asyncio.create_task(phrases.render(ctx, parts[i + 1], _label(i + 1, parts[i + 1])))
                       if i + 1 < len(parts) else None)
            await ctx.play_clip(clip, False, PromptPlayed, clip.name)
            played += 1
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
    return played


async def ask_rating(ctx: FlowContext) -> tuple[int | None, str | None]:
    """The rating question with retries: (rating, "keypad" | "speech"), or (None, None)."""
    speech = bool(ctx.services.speech_url) and ctx.channel.hears
    retry: str | None = None
    attempt = 0
    while attempt <= RETRIES:
        prompts = ([retry] if retry else []) + ["callback_rating"] + (["callback_rating_say"] if speech else [])
        if speech:
            kind, value, speech = await _hear_or_key(ctx, prompts)  # the recognizer down: keys from now on
        else:
            kind, value = await _key(ctx, prompts)
        if kind in ("keypad", "speech"):
            return value, kind
        retry = "invalid_input" if kind == "invalid" else "no_input"
        attempt += 1
    return None, None


async def _play_all(ctx: FlowContext, prompts: list[str]) -> None:
    for name in prompts:
        if (await ctx.play(name, barge_in=True)).interrupted:
            return


def _prompts_s(ctx: FlowContext, prompts: list[str]) -> float:
    return sum(ctx.prompts.get(p).duration_ms for p in prompts) / 1000


def _rating(key: str | None) -> tuple[str, int | None]:
    if key is None:
        return "none", None
    return ("keypad", int(key)) if key in "12345" and len(key) == 1 else ("invalid", None)


def _digit(ctx: FlowContext, got: tuple[str, str] | None) -> tuple[str, int | None]:
    """A key read while listening too: recorded only when it is the answer."""
    if got is not None:
        ctx.emit(DigitsReceived, node=ctx.node, digits=got[0], method=got[1])
    return _rating(got[0] if got is not None else None)


async def _key(ctx: FlowContext, prompts: list[str]) -> tuple[str, int | None]:
    await _play_all(ctx, prompts)
    return _rating(await read_key(ctx, NO_INPUT_S))


async def _hear_or_key(ctx: FlowContext, prompts: list[str]) -> tuple[str, int | None, bool]:
    """The question (on the call record) while listening for a key and for speech at once; the first answer wins.
    Speaking or a key stops the question. The last value is False when the recognizer could not be used."""
    wait_s = _prompts_s(ctx, prompts) + NO_INPUT_S
    options = ListenOptions(no_input_timeout_s=min(30.0, wait_s), max_utterance_s=6.0, end_silence_ms=600, beep=False)
    player = asyncio.create_task(_play_all(ctx, prompts))
    hearing = asyncio.create_task(listen_once(ctx, options, []))
    keying = asyncio.create_task(ctx.channel.next_digit(wait_s))
    try:
        done, _ = await asyncio.wait({hearing, keying}, return_when=asyncio.FIRST_COMPLETED)
        if keying in done and keying.result() is not None:
            down = (hearing.done() and not hearing.cancelled() and hearing.exception() is None
                    and hearing.result().kind in ("unavailable", "busy"))
            return *_digit(ctx, keying.result()), not down
        heard = await hearing  # done, or still hearing someone speak after the keypad's time ran out
        if heard.kind == "final" and heard.text:
            n = rating_from_speech(heard.text)
            return ("speech", n, True) if n is not None else ("invalid", None, True)
        # silence, or no recognizer (the question plays on): a key may still come until the keypad's own timeout
        return *_digit(ctx, await keying), heard.kind not in ("unavailable", "busy")
    finally:
        if not player.done():
            ctx.channel.stop_prompt()
        for t in (hearing, keying, player):
            if not t.done():
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
