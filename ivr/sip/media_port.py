"""One ``AudioMediaPort`` per call: caller frames out to asyncio, prompt frames in from the playout.

Both callbacks run on pjmedia's clock thread every 20 ms with the GIL held, so they only copy
bytes (fast path in ``frames``), update counters and hand data to the asyncio loop.

A worker takes its ports from a :class:`PortPool` and gives them back when the call is over: a port is never
destroyed while the process runs. Why: pjmedia's clock thread calls a port until its C++ destructor has taken it
out of the conference bridge, and that destructor runs with the GIL released after Python has already cleared the
object's attributes, so the clock thread ran ``onFrameReceived`` on a half-freed port ("'CallMediaPort' object has no
attribute 'stats'") and the worker died of SIGSEGV seconds later (1-hour soak: twice in 4,309 calls).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pjsua2 as pj
import structlog

from ivr.audio import Playout
from ivr.contract import MediaStats
from ivr.sip import frames

log = structlog.get_logger(__name__)

_AUDIO = pj.PJMEDIA_FRAME_TYPE_AUDIO


class CallMediaPort(pj.AudioMediaPort):
    def __init__(self, name: str, clock_rate: int, loop: asyncio.AbstractEventLoop,
                 on_audio: Callable[[bytes], None] | None, gap_threshold_ms: float, batch_frames: int = 5):
        super().__init__()
        self.frame_bytes = clock_rate * 2 // 50
        self.playout = Playout()
        self._loop = loop
        self._on_audio = on_audio
        self._gap_s = gap_threshold_ms / 1000.0
        self._last_rx = 0.0
        # caller audio goes to asyncio in batches (5 frames = 100 ms): one loop wake-up instead of five
        self._batch: list[bytes] = []
        self._batch_frames = batch_frames
        self.stats = MediaStats()
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, clock_rate, 1, 20000, 16)
        self.createPort(name, fmt)

    def reset(self, loop: asyncio.AbstractEventLoop, on_audio: Callable[[bytes], None] | None,
              gap_threshold_ms: float, batch_frames: int) -> None:
        """Ready for another call (a pooled port): fresh playout, counters and audio hand-off. The audio
        callback goes last, so a clock tick in between hands nothing to the new call from the old state."""
        self._on_audio = None
        self._last_rx = 0.0
        self._batch = []
        self._batch_frames = batch_frames
        self._gap_s = gap_threshold_ms / 1000.0
        self._loop = loop
        self.playout = Playout()
        self.stats = MediaStats()
        self._on_audio = on_audio

    def detach_audio(self) -> None:
        self._on_audio = None

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:  # noqa: N802 (pjsua2 API)
        try:
            now = time.monotonic()
            st = self.stats
            if self._last_rx:
                gap = now - self._last_rx
                if gap > self._gap_s:
                    st.gaps += 1
                    if gap * 1000.0 > st.max_gap_ms:
                        st.max_gap_ms = round(gap * 1000.0, 1)
            self._last_rx = now
            st.frames_rx += 1
            cb = self._on_audio
            if cb is not None and frame.type == _AUDIO:
                batch = self._batch
                batch.append(frames.read(frame.buf))
                if len(batch) >= self._batch_frames:
                    self._batch = []
                    self._loop.call_soon_threadsafe(cb, b"".join(batch))
        except Exception:  # pjsua2 would print and swallow it; keep the call alive and say why
            log.exception("frame_rx_failed")

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:  # noqa: N802 (pjsua2 API)
        try:
            chunk = self.playout.next_frame(self.frame_bytes)
            if chunk is None:
                frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
                frame.size = 0
                return
            frames.write(frame.buf, chunk)
            frame.size = len(chunk)
            frame.type = _AUDIO
            self.stats.frames_tx += 1
        except Exception:
            log.exception("frame_tx_failed")


class PortPool:
    """The media ports of one process: reused call after call and destroyed only at shutdown (see the module's
    docstring). A port is given back once its call is disconnected, when pjsua has taken the call's audio out of
    the bridge, so a pooled port is connected to nothing. The pool grows to the most calls held at once."""

    def __init__(self, clock_rate: int):
        self.clock_rate = clock_rate
        self._free: list[CallMediaPort] = []
        self._busy: dict[int, CallMediaPort] = {}
        self.created = 0

    def take(self, name: str, loop: asyncio.AbstractEventLoop, on_audio: Callable[[bytes], None] | None,
             gap_threshold_ms: float, batch_frames: int = 5) -> CallMediaPort:
        """A free port made ready for this call, or a new one (``name`` is its pjmedia name then)."""
        if self._free:
            port = self._free.pop()
            port.reset(loop, on_audio, gap_threshold_ms, batch_frames)
        else:
            self.created += 1
            port = CallMediaPort(name, self.clock_rate, loop, on_audio, gap_threshold_ms, batch_frames)
        self._busy[id(port)] = port
        return port

    def give_back(self, port: CallMediaPort) -> None:
        """The call is over; a port given back twice (or not from here) is left alone, so no two calls share one."""
        if self._busy.pop(id(port), None) is None:
            return
        port.detach_audio()
        port.playout.stop()
        self._free.append(port)

    def clear(self) -> None:
        """At shutdown: the ports lose the pool's references (the SIP stack is destroyed after)."""
        self._free.clear()
        self._busy.clear()
