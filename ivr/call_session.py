"""One SIP call as a transport: its media port, digit buffer, hub-command inbox and cleanups (implements
Channel). What is said on the call is not decided here: the session is handed a ``Conversation`` (the menu,
ivr/call_flow.py; a 回访, ivr/callback.py) and runs it once the caller's audio flows."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import numpy as np
import pjsua2 as pj
import structlog

from ivr.audio import Clip
from ivr.contract import BridgeCommand, BridgeUpdate, CallEnded, HangupCommand, HubCommand, QueueStatus
from ivr.flow.channel import PlayResult
from ivr.sip.call import SipCall
from ivr.sip.media_port import PortPool

log = structlog.get_logger(__name__)

MEDIA_WAIT_S = 5.0
CHUNK_FRAMES = 5  # caller audio to the flow in 100 ms chunks (40 ms measured no better: barge-in 241 vs 168 ms)

#: what the call is for, run once media flows; returns the cause the call is hung up with
Conversation = Callable[["CallSession"], Awaitable[str]]


class CallSession:
    FAILED_LOG = "flow_failed"  # the log line of a conversation that raised
    def __init__(self, call: SipCall, call_id: str, emit: Callable[..., None], clock_rate: int, gap_ms: float,
                 on_closed: Callable[[CallSession], None], conversation: Conversation | None = None, host=None,
                 ports: PortPool | None = None):
        self.call = call
        self.call_id = call_id
        self._emit = emit
        self.rate = clock_rate
        self._on_closed = on_closed
        self._conversation = conversation
        self.loop = asyncio.get_running_loop()
        # the worker's pool (a port is never destroyed mid-run, ivr/sip/media_port.py); a new one without it
        self.port = (ports or PortPool(clock_rate)).take(f"c{call_id[:8]}", self.loop, self._on_audio, gap_ms,
                                                         batch_frames=CHUNK_FRAMES)
        self.digits: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.media_ready = asyncio.Event()
        self.barge_in = False
        self.hangup_cause: str | None = None
        self.hears = True  # caller audio comes in (audio_chunks)
        self.audio: asyncio.Queue[bytes] = asyncio.Queue(maxsize=50)  # 100 ms chunks: ~5 s for the speech service
        self.task: asyncio.Task | None = None
        self.ack_timer: asyncio.TimerHandle | None = None  # set by the worker: check_confirmed
        self.ended = False
        self._media_connected = False
        self.call_audio: pj.AudioMedia | None = None
        #: the worker, for outbound legs (ivr.bridge.LegHost); None in a worker without bridging
        self.host = host
        # the operator queue (ivr/queueing.py): hub commands for this call, and what the hub last said
        self.inbox: asyncio.Queue[HubCommand] = asyncio.Queue()
        self.queued = False
        self.queue_status: QueueStatus | None = None
        #: run (on the main thread, in order) when the call ends, before CallEnded is emitted
        self.cleanups: list[Callable[[], None]] = []
        #: extra consumers of caller audio (recordings, transcription while bridged)
        self.audio_taps: list[Callable[[bytes], None]] = []
        call.listener = self

    # ---- events from pjsua (main thread, inside poll) -------------------------------------
    def emit(self, event_cls, **fields) -> None:
        self._emit(event_cls, call_id=self.call_id, **fields)

    def on_confirmed(self) -> None:
        if self.task is None:
            self.task = self.loop.create_task(self._run(), name=f"call-{self.call_id[:8]}")

    def check_confirmed(self) -> None:
        """Called a few seconds after the answer: a caller that never ACKed is not a call."""
        if self.task is None and not self.ended:
            log.warning("call_not_confirmed", call_id=self.call_id)
            self.hangup_cause = "no_ack"
            with contextlib.suppress(Exception):
                self.call.hangup(pj.CallOpParam(True))

    def on_media_active(self, audio: pj.AudioMedia) -> None:
        self.call_audio = audio
        if not self._media_connected:
            audio.startTransmit(self.port)
            self.port.startTransmit(audio)
            self._media_connected = True
        self.media_ready.set()

    def on_digit(self, digit: str, method: str) -> None:
        if self.barge_in and self.port.playout.active:
            self.port.playout.stop()  # barge-in: silence from the next 20 ms frame on
        self.digits.put_nowait((digit, method))

    def on_disconnected(self, status_code: int, reason: str) -> None:
        self.ended = True
        self.port.detach_audio()
        self.port.playout.stop()
        if self.task is not None and not self.task.done():
            self.task.cancel()
        for cleanup in self.cleanups:
            try:
                cleanup()
            except Exception:
                log.exception("call_cleanup_failed", call_id=self.call_id)
        self.cleanups.clear()
        self.audio_taps.clear()
        cause, side = self.end_cause(status_code)
        self.emit(CallEnded, cause=cause, side=side, status_code=status_code, media=self.port.stats)
        self._on_closed(self)

    def end_cause(self, status_code: int) -> tuple[str, str]:
        """The call record's end: cause and side (caller, ivr, system)."""
        if self.hangup_cause is not None:
            return self.hangup_cause, "ivr"
        if status_code >= 300 and status_code not in (487,):
            return f"sip_{status_code}", "system"
        return "caller_hangup", "caller"

    # ---- commands from the hub (ivr/hub_commands.py; main thread) ----------------------------
    def on_command(self, cmd: HubCommand) -> None:
        if self.ended:
            return
        if isinstance(cmd, HangupCommand):
            log.info("hub_hangup", call_id=self.call_id, reason=cmd.reason)
            self.loop.create_task(self.hangup("hub_hangup"))
        elif isinstance(cmd, QueueStatus):
            self.queue_status = cmd
            if self.queued:
                self.inbox.put_nowait(cmd)
        elif isinstance(cmd, BridgeCommand):
            if self.queued:
                self.inbox.put_nowait(cmd)
            else:
                self.emit(BridgeUpdate, offer_id=cmd.offer_id, target=cmd.target, state="failed", reason="not_queued")

    # ---- caller audio (handed over from the clock thread) -----------------------------------
    def _on_audio(self, data: bytes) -> None:
        st = self.port.stats
        st.task_frames += len(data) // self.port.frame_bytes
        if data:
            peak = int(np.abs(np.frombuffer(data, dtype="<i2")).max())
            if peak > st.rx_peak:
                st.rx_peak = peak
        for tap in self.audio_taps:
            tap(data)
        if self.audio.full():
            self.audio.get_nowait()  # nobody listening: keep the newest few seconds only
        self.audio.put_nowait(data)

    # ---- Channel ----------------------------------------------------------------------------
    async def play(self, clip: Clip, barge_in: bool) -> PlayResult:
        if self.ended:
            raise asyncio.CancelledError
        fut: asyncio.Future[tuple[int, bool]] = self.loop.create_future()

        def done(nbytes: int, interrupted: bool) -> None:
            def resolve() -> None:
                if not fut.done():
                    fut.set_result((nbytes, interrupted))
            self.loop.call_soon_threadsafe(resolve)

        self.barge_in = barge_in
        self.port.playout.start(clip.pcm, done)
        try:
            nbytes, interrupted = await fut
        finally:
            self.barge_in = False
            if not fut.done():
                self.port.playout.stop()
        return PlayResult(nbytes * 1000 // (2 * self.rate), interrupted)

    def stop_prompt(self) -> None:
        self.port.playout.stop()

    def hold_prompt(self, held: bool) -> None:
        self.port.playout.hold(held)

    async def audio_chunks(self):
        """Caller audio from now on (100 ms chunks of PCM16 at the bridge clock) until the call ends, including
        what was still on its way when it ended."""
        while not self.audio.empty():  # what was said before listening started is not the answer
            self.audio.get_nowait()
        while not self.ended:
            try:
                yield await asyncio.wait_for(self.audio.get(), 1.0)
            except TimeoutError:
                continue
        while not self.audio.empty():
            yield self.audio.get_nowait()

    def has_digits(self) -> bool:
        return not self.digits.empty()

    async def next_digit(self, timeout: float) -> tuple[str, str] | None:
        try:
            return await asyncio.wait_for(self.digits.get(), timeout)
        except TimeoutError:
            return None

    def flush_digits(self) -> None:
        while not self.digits.empty():
            self.digits.get_nowait()

    async def hangup(self, cause: str = "ivr_hangup") -> None:
        if self.ended:
            return
        if self.hangup_cause is None:
            self.hangup_cause = cause
        with contextlib.suppress(Exception):
            self.call.hangup(pj.CallOpParam(True))

    # ---- the conversation ----------------------------------------------------------------------
    async def converse(self) -> str:
        """What the call is for; returns the hang-up cause (a 回访 overrides this)."""
        if self._conversation is None:
            return "no_conversation"
        return await self._conversation(self)

    async def _run(self) -> None:
        try:
            await asyncio.wait_for(self.media_ready.wait(), MEDIA_WAIT_S)
            await self.hangup(await self.converse())
        except asyncio.CancelledError:
            pass
        except TimeoutError:
            await self.hangup("timeout")
        except Exception:
            log.exception(self.FAILED_LOG, call_id=self.call_id)
            await self.hangup("error")
