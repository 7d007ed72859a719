"""One queue in front of the recognizer for every caller: priorities, batching, back-pressure.

Whisper costs ~0.4-0.5 s of both cores per utterance whatever its length, so decodes are scheduled,
not started one thread per call. A caller waiting for an answer (priority 0) goes before anything
else; jobs waiting together are decoded as one batch (``decode_many``); when the expected wait
exceeds ``max_wait_s`` a caller's new job is refused at once with :class:`Busy` rather than queued
without bound, so the IVR can say so and hand the caller to staff. A job nobody waits for on the line
(a bridged conversation's transcript, a recorded message) is never refused: it waits its turn, since
a refusal would lose that text for good.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from asr.whisper_engine import Transcript

DecodeMany = Callable[..., list[Transcript]]  # (items, expect=None, length=None) -> one Transcript per item

PRIORITY_ANSWER = 0  # a caller on the line waiting for the answer to a question
PRIORITY_BACKGROUND = 5  # messages, recordings: transcribed when the line is free
PRIORITY_PARTIAL = 8  # live partial transcripts: only when nothing else waits
#: a speculative final is refused when the batch being decoded needs longer than this to finish
OPTIONAL_MAX_WAIT_S = 0.8


class Busy(Exception):
    """The recognizer cannot take this job within the configured wait."""

    def __init__(self, expected_wait_s: float):
        super().__init__(f"recognizer busy: expected wait {expected_wait_s:.1f} s")
        self.expected_wait_s = expected_wait_s


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    pcm: np.ndarray | bytes = field(compare=False)
    rate: int = field(compare=False)
    future: Future = field(compare=False)
    queued_at: float = field(compare=False)
    expect: tuple[str, int | None] | None = field(compare=False, default=None)  # a number: (kind, length)
    alternatives: int = field(compare=False, default=0)  # n-best: this many next hypotheses wanted


@dataclass
class QueueStats:
    decoded: int = 0
    batches: int = 0
    refused_busy: int = 0
    max_queue: int = 0
    max_wait_s: float = 0.0
    batch_s_avg: float = 0.0
    optional_refused: int = 0  # speculative or partial decodes refused because the queue was busy
    cancelled: int = 0  # jobs dropped before decoding (a speculative decode the caller talked over)


class DecodeQueue:
    """``lanes`` batches decode at once (the engine's model replicas, ``asr.decode_lanes``); partials never take
    the last free lane, so a caller's final does not wait behind somebody's partial."""

    def __init__(self, decode_many: DecodeMany, max_batch: int = 4, max_wait_s: float = 3.0,
                 batch_s_guess: float = 0.6, partial_beam_size: int | None = None, lanes: int = 1):
        self._decode_many = decode_many
        self.lanes = lanes
        self.partial_beam_size = partial_beam_size  # partials' beam (``beam_size`` to decode_many); None: its own
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._busy_until = [0.0] * lanes  # per lane: monotonic end estimate of the batch it decodes (0: idle)
        self._closed = False
        self.stats = QueueStats(batch_s_avg=batch_s_guess)
        self._recent: deque[tuple[float, int]] = deque(maxlen=16)  # (seconds, utterances) of recent batches
        self._threads = [threading.Thread(target=self._run, args=(lane,), name=f"decode-lane-{lane}", daemon=True)
                         for lane in range(lanes)]
        for t in self._threads:
            t.start()

    def expected_wait_s(self) -> float:
        """Time until a job submitted now would be decoded: the first free lane, then the jobs ahead shared by
        the lanes at the slowest recent cost per utterance."""
        with self._cv:
            return self._expected_wait_locked()

    def _expected_wait_locked(self) -> float:
        # per utterance, not per batch: a batch of four slowed by a busy CPU must not make an idle queue refuse
        # a lone caller (it refused every caller of the second round of 8 when that batch was counted whole)
        return self._lane_free_in_locked() + math.ceil((len(self._heap) + 1) / self.lanes) * self._item_s_locked()

    def _item_s_locked(self) -> float:
        """The slowest recent decode time per utterance (not the average: a caller admitted under the bound
        must stay under it)."""
        return max(t / n for t, n in self._recent) if self._recent else self.stats.batch_s_avg

    def _lane_free_in_locked(self) -> float:
        """Seconds until the first lane is free (0 when one is idle)."""
        now = time.monotonic()
        return min(max(0.0, b - now) if b else 0.0 for b in self._busy_until)

    def _refuse_optional_locked(self, priority: int) -> bool:
        # what counts is the load now, not the slowest recent batch: on an idle lane an optional decode
        # always starts at once; either waits only for a lane that is free within OPTIONAL_MAX_WAIT_S;
        # a partial never waits behind queued jobs nor takes the last idle lane, a speculative final joins
        # the next batch unless a full one waits
        if self._lane_free_in_locked() > OPTIONAL_MAX_WAIT_S:
            return True
        if priority >= PRIORITY_PARTIAL:
            idle = sum(1 for b in self._busy_until if not b)
            return bool(self._heap) or (self.lanes > 1 and idle < 2)
        return len(self._heap) >= self.max_batch

    def _share_locked(self, lane: int) -> int:
        """How many of the waiting jobs this lane takes: each job goes, in turn, to the lane that would finish it
        first (the others' running batches by their estimates). One lane decoding a batch of four while the other
        idles left a core unused: eight callers who stopped together waited ~1.2 s longer for the second half."""
        now, item = time.monotonic(), self._item_s_locked()
        ends = [0.0 if i == lane else max(0.0, b - now) if b else 0.0 for i, b in enumerate(self._busy_until)]
        mine = 0
        for _ in range(min(len(self._heap), self.max_batch * self.lanes)):
            i = min(range(len(ends)), key=lambda k: (ends[k], k != lane))
            ends[i] += item
            mine += i == lane
        return max(1, min(self.max_batch, mine))

    def submit(self, pcm: np.ndarray | bytes, rate: int, priority: int = PRIORITY_ANSWER,
               expect: tuple[str, int | None] | None = None, optional: bool = False, alternatives: int = 0) -> Future:
        """Queue a decode; ``optional`` ones (speculative finals, partials) are refused with Busy as soon
        as the queue is loaded, so they never delay a caller's final; a caller's (priority 0) is refused
        when it would wait over ``max_wait_s``; any other waits. Cancel the future to drop a job
        still waiting."""
        fut: Future = Future()
        with self._cv:
            if self._closed:
                raise RuntimeError("decode queue closed")
            wait = self._expected_wait_locked()
            if optional and self._refuse_optional_locked(priority):
                self.stats.optional_refused += 1
                raise Busy(wait)
            if wait > self.max_wait_s and priority <= PRIORITY_ANSWER:
                self.stats.refused_busy += 1
                raise Busy(wait)
            heapq.heappush(self._heap, _Job(priority, next(self._seq), pcm, rate, fut, time.monotonic(), expect,
                                            alternatives))
            self.stats.max_queue = max(self.stats.max_queue, len(self._heap))
            self._cv.notify()
        return fut

    def decode(self, pcm: np.ndarray | bytes, rate: int, priority: int = PRIORITY_ANSWER,
               expect: tuple[str, int | None] | None = None, alternatives: int = 0) -> Transcript:
        """Submit and wait (from a worker thread, never an event loop)."""
        return self.submit(pcm, rate, priority, expect, alternatives=alternatives).result(
            timeout=self.max_wait_s + 60)

    def _run(self, lane: int) -> None:
        while True:
            with self._cv:
                while not self._heap and not self._closed:
                    self._cv.wait()
                if self._closed and not self._heap:
                    return
                # one batch decodes one kind of text: free speech, or one kind of number
                take = self._share_locked(lane)
                first = heapq.heappop(self._heap)
                jobs, rest = [first], []
                while self._heap and len(jobs) < take:
                    j = heapq.heappop(self._heap)
                    # partials never ride in a caller's batch: each item costs the encoder its window
                    same = j.expect == first.expect and j.alternatives == first.alternatives and (
                        j.priority >= PRIORITY_PARTIAL) == (first.priority >= PRIORITY_PARTIAL)
                    (jobs if same else rest).append(j)
                for j in rest:
                    heapq.heappush(self._heap, j)
                if self._heap:
                    self._cv.notify()  # the rest is another lane's share
                live = [j for j in jobs if j.future.set_running_or_notify_cancel()]
                self.stats.cancelled += len(jobs) - len(live)
                jobs = live
                if not jobs:
                    continue
                self._busy_until[lane] = time.monotonic() + len(jobs) * self._item_s_locked()
            t0 = time.monotonic()
            for j in jobs:
                self.stats.max_wait_s = max(self.stats.max_wait_s, t0 - j.queued_at)
            try:
                items = [(j.pcm, j.rate) for j in jobs]
                kw: dict = {"alternatives": first.alternatives} if first.alternatives else {}
                if first.expect is not None:
                    kw.update(expect=first.expect[0], length=first.expect[1])
                elif first.priority >= PRIORITY_PARTIAL and self.partial_beam_size:
                    kw["beam_size"] = self.partial_beam_size
                results = self._decode_many(items, **kw)
            except Exception as e:  # one bad batch must not stop the service
                with self._cv:
                    self._busy_until[lane] = 0.0
                for j in jobs:
                    j.future.set_exception(e)
                continue
            took = time.monotonic() - t0
            with self._cv:
                s = self.stats
                s.batches += 1
                s.decoded += len(jobs)
                s.batch_s_avg = 0.8 * s.batch_s_avg + 0.2 * took
                self._recent.append((took, len(jobs)))
                self._busy_until[lane] = 0.0
            for j, r in zip(jobs, results, strict=True):
                j.future.set_result(r)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        for t in self._threads:
            t.join(5)
