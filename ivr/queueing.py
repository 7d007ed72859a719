"""The caller's side of the operator queue (the ``handoff`` opts).

    handoff ─ outside working hours ──▶ "现在是非工作时间…" beep, message ─▶ QueueLeft after_hours
            ─ no hub connection ──────▶ "…工作人员会尽快回电"                ─▶ QueueLeft no_hub
            ─ QueueJoined ─▶ hold music, "您前面还有N位…" every announce_every_s / on a new position
                 ├─ key 1, or max_wait_s ─▶ QueueLeft callback|max_wait, message, goodbye, hang up
                 ├─ BridgeCommand ─▶ dial the operator (music goes on while it rings)
                 │     ├─ answered ─▶ BridgeUpdate connected, QueueLeft bridged, talk until one side hangs up
                 │     └─ busy / no answer / error ─▶ BridgeUpdate failed, still queued
                 │   or, with ivr.operator_transfer = "refer", REFER the caller's phone to the operator
                 │     ├─ answered ─▶ BridgeUpdate connected, QueueLeft bridged, the worker hangs up (transferred)
                 │     ├─ REFER refused ─▶ BridgeUpdate failed refer_refused…, bridge as above (refer_fallback_bridge)
                 │     └─ busy / no answer / error ─▶ BridgeUpdate failed, still queued
                 └─ caller hangs up ─▶ QueueLeft hangup (before CallEnded)

Hub commands reach the call through ``CallSession.on_command`` (its ``inbox``); the operator leg
reports through ``leg_events``. One asyncio.wait over the player, the keypad, the inbox and the leg
drives everything, so a command or a key never waits behind a prompt.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from pydantic import BaseModel, ConfigDict, Field

from ivr.audio import Clip
from ivr.bridge import OperatorLeg
from ivr.bridged import end_talk, start_talk
from ivr.contract import (
    BridgeCommand,
    BridgeUpdate,
    DigitsReceived,
    HandoffRequested,
    PromptPlayed,
    QueueJoined,
    QueueLeft,
    QueueStatus,
)
from ivr.flow.context import FlowContext
from ivr.flow.outcomes import Hangup
from ivr.recording import RecordOptions, record_and_report
from ivr.refer import ReferTransfer
from ivr.speech_client import SpeechUnavailable, synthesize

log = structlog.get_logger(__name__)

MIN_ANNOUNCE_GAP_S = 8.0  # a burst of position changes is announced once, not back to back
TTS_TIMEOUT_S = 3.0
ZH_DIGITS = "零一二三四五六七八九"


def zh_number(n: int) -> str:
    """How a person says a count of callers: 2 两, 12 十二, 20 二十, 35 三十五 (digits from 100 on)."""
    if n == 2:
        return "两"
    if n < 10:
        return ZH_DIGITS[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return ("" if tens == 1 else ZH_DIGITS[tens]) + "十" + (ZH_DIGITS[ones] if ones else "")
    return "".join(ZH_DIGITS[int(c)] for c in str(n))


def number_prompts(n: int) -> list[str]:
    """The same words as bundled prompt ids (number_two, number_ten, digit_N)."""
    words = {"两": "number_two", "十": "number_ten", **{c: f"digit_{i}" for i, c in enumerate(ZH_DIGITS)}}
    return [words[c] for c in zh_number(n)]


def position_text(n: int) -> str:
    if n == 0:
        return "您是下一位，请耐心等待；如需回电请按1。"
    return f"您前面还有{zh_number(n)}位，请耐心等待；如需回电请按1。"


class HandoffOptions(BaseModel):
    """What the operator queue needs of a ``handoff`` verb (its YAML arguments; ivr/verbs/handoff.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = "caller_request"
    category: str | None = None
    prompt: str | None = "handoff"
    unavailable_prompt: str | None = "handoff_unavailable"
    queue: bool = Field(True, description="wait for an operator; false: record the request and end the call")
    hold_music: str = "hold_music"
    announce_every_s: float = Field(30.0, ge=5, le=600)
    max_wait_s: float = Field(180.0, gt=0, le=3600)
    callback_key: str = "1"
    callback_message: bool = Field(True, description="record a short message with a callback request")
    callback_prompt: str | None = "callback_message"
    callback_goodbye_prompt: str | None = "callback_goodbye"
    max_wait_prompt: str | None = "queue_max_wait"
    after_hours_prompt: str = "after_hours"
    after_hours_goodbye_prompt: str | None = "message_goodbye"
    message_max_s: float = Field(60.0, ge=5, le=300)
    confirm_message: bool = Field(False, description="after a message: 确认请按1，重新录制请按2")


async def run_handoff(ctx: FlowContext, opts: HandoffOptions):
    ctx.emit(HandoffRequested, node=ctx.node, reason=opts.reason, category=opts.category)
    hours = ctx.services.working_hours
    if opts.queue and hours is not None and not hours.is_open():
        return await after_hours(ctx, opts)
    link = ctx.services.hub_link
    if not opts.queue or link is None or not link.connected:
        if opts.queue:
            ctx.emit(QueueLeft, node=ctx.node, outcome="no_hub")
        if opts.prompt:
            await ctx.play_clip(ctx.prompts.get(opts.prompt).prompt_start(), False, PromptPlayed, opts.prompt)
        if opts.unavailable_prompt:
            await ctx.play(opts.unavailable_prompt, barge_in=False)
        return Hangup("handoff_unavailable")
    return await QueueWait(ctx, opts).run()


async def after_hours(ctx: FlowContext, opts: HandoffOptions):
    ctx.emit(QueueLeft, node=ctx.node, outcome="after_hours")
    ctx.channel.flush_digits()
    await ctx.play(opts.after_hours_prompt, barge_in=False)
    await record_and_report(ctx, RecordOptions("after_hours", max_s=opts.message_max_s), confirm=opts.confirm_message)
    if opts.after_hours_goodbye_prompt:
        await ctx.play(opts.after_hours_goodbye_prompt, barge_in=False)
    return Hangup("after_hours_message")


class QueueWait:
    def __init__(self, ctx: FlowContext, opts: HandoffOptions):
        self.ctx, self.opts, self.ch = ctx, opts, ctx.channel
        self.loop = asyncio.get_running_loop()
        self.left = False
        self.leg: OperatorLeg | ReferTransfer | None = None
        self.leg_events: asyncio.Queue[OperatorLeg | ReferTransfer] = asyncio.Queue()
        self.music = ctx.prompts.get(opts.hold_music)
        self.music_pos = 0
        self.announced: int | None = None
        self.last_announce = -1e9
        self.player: asyncio.Task | None = None
        self.playing = ""  # prompt | music | announcement

    # ---- leaving ----------------------------------------------------------------------------
    def leave(self, outcome: str) -> None:
        if not self.left:
            self.left = True
            self.ch.queued = False
            self.ctx.emit(QueueLeft, node=self.ctx.node, outcome=outcome)

    def _caller_gone(self) -> None:
        """Runs in CallSession.on_disconnected, before CallEnded."""
        if self.leg is not None:
            self.leg.caller_left(self.ch.hangup_cause or "caller_hangup")
        self.leave("hangup")

    # ---- the wait ---------------------------------------------------------------------------
    async def run(self):
        ctx, v, ch = self.ctx, self.opts, self.ch
        ctx.emit(QueueJoined, node=ctx.node, reason=v.reason, category=v.category)
        ch.queued = True
        ch.cleanups.append(self._caller_gone)
        log.info("queue_joined", call_id=ch.call_id, reason=v.reason)
        waits: dict[str, asyncio.Task] = {}
        try:
            return await self._wait(waits)
        finally:
            ch.queued = False
            for t in [*waits.values(), self.player]:
                if t is not None and not t.done():
                    t.cancel()
            if self.player is not None and not self.player.done():
                ch.stop_prompt()

    def _play(self, kind: str, clip: Clip, event: bool = True) -> None:
        self.playing = kind
        self.player = asyncio.create_task(self.ctx.play_clip(clip, True, PromptPlayed if event else None, clip.name))

    def _music_clip(self, seconds: float) -> Clip:
        pcm, rate = self.music.pcm, self.ctx.prompts.rate
        want = max(2, int(seconds * rate)) * 2
        out = bytearray()
        pos = self.music_pos
        while len(out) < want:
            take = pcm[pos:pos + want - len(out)]
            out += take
            pos = (pos + len(take)) % len(pcm)
        return Clip(self.opts.hold_music, bytes(out), rate)

    def _stop_player(self, only: tuple[str, ...] = ("prompt", "music", "announcement")) -> None:
        if self.player is not None and not self.player.done() and self.playing in only:
            self.ch.stop_prompt()

    async def _wait(self, waits: dict[str, asyncio.Task]):
        ctx, v, ch = self.ctx, self.opts, self.ch
        start = self.loop.time()
        deadline = start + v.max_wait_s
        next_announce = start + v.announce_every_s
        if ch.queue_status is not None:
            next_announce = start  # the hub already said where the caller stands: say it after the prompt
        if v.prompt:  # the reply to what the caller just said or keyed: from its first sound, not its lead silence
            self._play("prompt", ctx.prompts.get(v.prompt).prompt_start())
        while True:
            now = self.loop.time()
            if self.player is None:
                idle = self.leg is None
                if idle and now >= deadline:
                    return await self._callback("max_wait")
                if idle and now >= next_announce:
                    clip = await self._announcement()
                    self._play("announcement", clip)
                    self.last_announce = self.loop.time()
                    next_announce = self.last_announce + v.announce_every_s
                else:
                    until = min(next_announce, deadline) if idle else now + v.announce_every_s
                    self._play("music", self._music_clip(max(0.5, until - now)), event=False)
            if "digit" not in waits:
                waits["digit"] = asyncio.create_task(ch.next_digit(3600.0))
            if "inbox" not in waits:
                waits["inbox"] = asyncio.create_task(ch.inbox.get())
            if "leg" not in waits:
                waits["leg"] = asyncio.create_task(self.leg_events.get())
            done, _ = await asyncio.wait({self.player, *waits.values()}, return_when=asyncio.FIRST_COMPLETED)

            if self.player in done:
                result = self.player.result()
                if self.playing == "music":
                    rate = ctx.prompts.rate
                    self.music_pos = (self.music_pos + result.played_ms * rate // 1000 * 2) % len(self.music.pcm)
                self.player = None
            if waits.get("digit") in done:
                got = waits.pop("digit").result()
                if got is not None:
                    ctx.emit(DigitsReceived, node=ctx.node, digits=got[0], method=got[1])
                    if got[0] == v.callback_key:
                        if self.leg is not None:
                            self.leg.hangup("caller_chose_callback")
                        self._stop_player()
                        return await self._callback("callback")
            if waits.get("inbox") in done:
                cmd = waits.pop("inbox").result()
                if isinstance(cmd, QueueStatus):
                    if cmd.position != self.announced and self.leg is None:
                        next_announce = max(self.loop.time(), self.last_announce + MIN_ANNOUNCE_GAP_S)
                        self._stop_player(("music",))
                elif isinstance(cmd, BridgeCommand):
                    self._bridge(cmd)
            if waits.get("leg") in done:
                leg = waits.pop("leg").result()
                if leg is self.leg and leg.state == "connected":
                    self._stop_player()
                    for t in waits.values():
                        t.cancel()
                    waits.clear()
                    self.leave("bridged")
                    if leg.hands_over:  # REFER: the caller talks to the operator without us
                        return Hangup("transferred")
                    return await self._bridged(leg)
                if leg is self.leg and leg.state in ("failed", "ended"):
                    self.leg = None
                    if leg.bridge_instead:  # the caller's phone refused the REFER
                        self._dial(leg.cmd)
                    next_announce = max(next_announce, self.loop.time() + 2.0)

    def _bridge(self, cmd: BridgeCommand) -> None:
        if self.leg is not None:
            self.ch.emit(BridgeUpdate, offer_id=cmd.offer_id, target=cmd.target, state="failed", reason="busy_dialing")
            return
        if self.ch.host is None:
            self.ch.emit(BridgeUpdate, offer_id=cmd.offer_id, target=cmd.target, state="failed", reason="no_sip")
            return
        if self.ctx.services.operator_transfer == "refer":
            xfer = ReferTransfer(self.ch, cmd, self.ctx.node, self.leg_events.put_nowait,
                                 self.ctx.services.refer_fallback_bridge)
            self.leg = xfer
            if xfer.start():
                return
            self.leg = None  # it reported failed; its queued report is ignored
            if not xfer.bridge_instead:
                return
        self._dial(cmd)

    def _dial(self, cmd: BridgeCommand) -> None:
        """The worker calls the operator's phone itself (ivr/bridge.py)."""
        leg = OperatorLeg(self.ch, cmd, self.ch.host, self.ctx.node, self.leg_events.put_nowait)
        self.leg = leg
        if not leg.start():
            self.leg = None  # it reported failed (no_slot, dial_error); its queued report is ignored

    async def _announcement(self) -> Clip:
        ctx = self.ctx
        st = self.ch.queue_status
        if st is None:
            return ctx.prompts.get("queue_wait")
        n = st.position
        self.announced = n
        if n == 0:
            return ctx.prompts.get("queue_next")
        url = ctx.services.speech_url
        rate = ctx.prompts.rate
        if url:
            try:
                pcm = await asyncio.wait_for(synthesize(url, position_text(n), rate), TTS_TIMEOUT_S)
                return Clip(f"queue_position:{n}", pcm, rate)
            except (SpeechUnavailable, TimeoutError) as e:
                log.info("position_tts_unavailable", call_id=self.ch.call_id, error=str(e))
        names = ["queue_ahead", *number_prompts(n), "queue_ahead_tail"]
        gap = ctx.prompts.silence(0.05).pcm
        return Clip(f"queue_position:{n}", gap.join(ctx.prompts.get(p).pcm for p in names), rate)

    async def _callback(self, outcome: str):
        ctx, v = self.ctx, self.opts
        if self.player is not None and not self.player.done():
            with contextlib.suppress(asyncio.CancelledError):
                await self.player
        self.player = None
        self.leave(outcome)
        log.info("queue_callback", call_id=self.ch.call_id, outcome=outcome)
        self.ch.flush_digits()
        if outcome == "max_wait" and v.max_wait_prompt:
            await ctx.play(v.max_wait_prompt, barge_in=False)
        if v.callback_message and v.callback_prompt:
            await ctx.play(v.callback_prompt, barge_in=False)
            await record_and_report(ctx, RecordOptions("callback", max_s=v.message_max_s), confirm=v.confirm_message)
        if v.callback_goodbye_prompt:
            await ctx.play(v.callback_goodbye_prompt, barge_in=False)
        return Hangup("queue_" + outcome)

    # ---- talking to the operator --------------------------------------------------------------
    async def _bridged(self, leg: OperatorLeg):
        ctx, ch = self.ctx, self.ch
        if self.player is not None and not self.player.done():
            with contextlib.suppress(asyncio.CancelledError):
                await self.player
        self.player = None
        talk = start_talk(ctx, leg, "bridged")
        try:
            while leg.state == "connected":
                await self.leg_events.get()
            return Hangup("operator_hangup")
        finally:
            seconds = end_talk(ctx, talk)
            if talk.recorder is not None:
                log.info("bridged_call_recorded", call_id=ch.call_id, file=talk.recorder.path.name, seconds=seconds)
