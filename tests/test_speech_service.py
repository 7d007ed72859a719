"""The speech service: its decode queue (priorities, batching, busy) and the websocket protocol with the
real whisper model."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import websockets

from asr.decode_queue import PRIORITY_ANSWER, PRIORITY_BACKGROUND, PRIORITY_PARTIAL, Busy, DecodeQueue
from asr.whisper_engine import Transcript
from tests.sipsupport import free_port_block

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "tests" / "data" / "speech"
MODEL = ROOT / "var" / "models" / "whisper-base"


class TimedDecoder:
    """Stands in for whisper's batch decode with a fixed cost, recording what it was given."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, items):
        self.gate.wait()
        time.sleep(self.seconds)
        self.batches.append([len(pcm) for pcm, _ in items])
        return [Transcript(f"len{len(pcm)}", 1.0, len(pcm) / rate, self.seconds) for pcm, rate in items]


def test_queue_batches_waiting_jobs_and_serves_callers_before_background_work():
    dec = TimedDecoder(0.05)
    q = DecodeQueue(dec, max_batch=4, max_wait_s=10)
    dec.gate.clear()  # hold the decoder so jobs pile up
    first = q.submit(np.zeros(1, np.int16), 8000)
    time.sleep(0.05)
    background = [q.submit(np.zeros(10 + i, np.int16), 8000, PRIORITY_BACKGROUND) for i in range(4)]
    callers = [q.submit(np.zeros(100 + i, np.int16), 8000, PRIORITY_ANSWER) for i in range(4)]
    dec.gate.set()
    assert [f.result(5).text for f in callers] == [f"len{100 + i}" for i in range(4)]
    assert [f.result(5).text for f in background] == [f"len{10 + i}" for i in range(4)]
    assert first.result(5).text == "len1"
    assert dec.batches[1] == [100, 101, 102, 103]  # the callers went first, in one batch
    assert dec.batches[2] == [10, 11, 12, 13]
    q.close()


def test_partials_are_decoded_greedily_and_a_callers_final_with_the_full_beam():
    """A partial only shows on the console; a greedy one (~40 % faster) holds the decoder less when the
    caller stops and the final's decode has to wait for it."""
    seen: list[tuple[int, dict]] = []

    def dec(items, **kw):
        seen.append((len(items), kw))
        return [Transcript("x", 1.0, 0.1, 0.0) for _ in items]

    q = DecodeQueue(dec, max_batch=4, max_wait_s=10, partial_beam_size=1)
    q.submit(np.zeros(800, np.int16), 8000, PRIORITY_PARTIAL, optional=True).result(5)
    q.submit(np.zeros(800, np.int16), 8000, PRIORITY_ANSWER).result(5)
    q.submit(np.zeros(800, np.int16), 8000, PRIORITY_PARTIAL, expect=("digits", 11), optional=True).result(5)
    q.close()
    assert seen == [(1, {"beam_size": 1}), (1, {}), (1, {"expect": "digits", "length": 11})]


def test_queue_refuses_with_busy_instead_of_waiting_without_bound():
    dec = TimedDecoder(0.5)
    q = DecodeQueue(dec, max_batch=1, max_wait_s=1.2, batch_s_guess=0.5)
    accepted, refused = [], 0
    for _ in range(10):
        try:
            accepted.append(q.submit(np.zeros(8, np.int16), 8000))
        except Busy as e:
            refused += 1
            assert e.expected_wait_s > 1.2
    assert 1 <= len(accepted) <= 3 and refused >= 7
    t0 = time.monotonic()
    for f in accepted:
        f.result(5)
    assert time.monotonic() - t0 < 2.5  # nobody accepted waited past the bound (plus one decode)
    assert q.stats.refused_busy == refused
    q.close()


def test_a_loaded_queue_refuses_callers_but_keeps_every_conversation_and_message_transcript():
    """Refusing a bridged call's or a message's final would lose that text: those wait their turn."""
    dec = TimedDecoder(0.2)
    q = DecodeQueue(dec, max_batch=1, max_wait_s=0.5, batch_s_guess=0.2)
    dec.gate.clear()
    held = [q.submit(np.zeros(8, np.int16), 8000, PRIORITY_ANSWER) for _ in range(2)]
    with pytest.raises(Busy):
        q.submit(np.zeros(8, np.int16), 8000, PRIORITY_ANSWER)
    kept = [q.submit(np.zeros(20 + i, np.int16), 8000, p) for i, p in enumerate((1, PRIORITY_BACKGROUND))]
    dec.gate.set()
    assert [f.result(10).text for f in kept] == ["len20", "len21"]
    assert all(f.result(10) for f in held) and q.stats.refused_busy == 1
    q.close()


@pytest.fixture(scope="module")
def service_url():
    from asr.service import SpeechService
    from asr.settings import AsrSettings
    from asr.whisper_engine import WhisperEngine

    settings = AsrSettings()
    engine = WhisperEngine(MODEL, settings)
    service = SpeechService(settings, engine.transcribe_many, max_wait_s=3.0)
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()

    port = free_port_block(1)
    t = threading.Thread(target=lambda: loop.run_until_complete(service.serve("127.0.0.1", port, stop)), daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            break
        time.sleep(0.05)
    yield f"ws://127.0.0.1:{port}"
    loop.call_soon_threadsafe(stop.set)
    t.join(5)


async def _speak(url: str, pcm: bytes, config: dict | None = None) -> list[dict]:
    replies = []
    async with websockets.connect(url) as ws:
        # the client offers permessage-deflate; the service declines it (audio hardly compresses)
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        await ws.send(json.dumps({"config": {"sample_rate": 8000, **(config or {})}}))
        for i in range(0, len(pcm), 1600):
            await ws.send(pcm[i:i + 1600])
            replies.append(json.loads(await ws.recv()))
        await ws.send(json.dumps({"eof": 1}))
        replies.append(json.loads(await ws.recv()))
    return replies


def _clip(name: str) -> bytes:
    from asr.audio import read_wav

    pcm, _ = read_wav(SPEECH / name)
    return bytes(8000) + pcm.astype("<i2").tobytes() + bytes(2 * 8000)  # 0.5 s before, 1 s after


def test_protocol_one_reply_per_message_and_a_final(service_url):
    pcm = _clip("q01.wav")
    replies = asyncio.run(_speak(service_url, pcm))
    assert len(replies) == len(range(0, len(pcm), 1600)) + 1  # vosk-server clients read one reply per send
    finals = [r for r in replies if r.get("text")]
    assert len(finals) == 1 and "案件" in finals[0]["text"], finals
    assert any("speech_started" in r.get("events", []) for r in replies)
    assert finals[0]["timings"]["endpoint_delay_s"] <= 0.7


def test_silence_gives_no_input_and_bad_config_is_refused(service_url):
    replies = asyncio.run(_speak(service_url, bytes(2 * 8000 * 3), {"no_input_timeout_s": 1.0}))
    assert any("no_input" in r.get("events", []) for r in replies)
    assert not any(r.get("text") for r in replies)

    async def bad(config: dict):
        async with websockets.connect(service_url) as ws:
            await ws.send(json.dumps({"config": config}))
            return json.loads(await ws.recv())

    assert "sample_rate" in asyncio.run(bad({"sample_rate": 44100}))["error"]
    # stream overrides are checked like the settings: no endless utterance, no jumping ahead of callers
    assert "max_utterance_s" in asyncio.run(bad({"max_utterance_s": 1e9}))["error"]
    assert "end_silence_ms" in asyncio.run(bad({"end_silence_ms": "lots"}))["error"]
    assert "priority" in asyncio.run(bad({"priority": -5}))["error"]


def test_eight_callers_at_once_all_get_an_answer_or_a_clear_busy(service_url):
    clips = [_clip(f"q0{i}.wav") for i in range(1, 9)]

    async def all_at_once():
        return await asyncio.gather(*(_speak(service_url, c) for c in clips))

    t0 = time.monotonic()
    results = asyncio.run(all_at_once())
    took = time.monotonic() - t0
    outcomes = ["busy" if any(r.get("busy") for r in rs) else ("final" if any(r.get("text") for r in rs) else "none")
                for rs in results]
    print(f"\n8 callers at once: {outcomes.count('final')} finals, {outcomes.count('busy')} busy, {took:.1f} s")
    assert "none" not in outcomes and outcomes.count("final") >= 4


def test_two_lanes_decode_two_batches_at_once_and_a_partial_never_takes_the_last_free_lane():
    """With two model replicas a caller's final does not wait behind another caller's batch, and a partial
    (display only) runs only while a second lane stays free for a final."""
    dec = TimedDecoder(0.3)
    q = DecodeQueue(dec, max_batch=1, max_wait_s=10, lanes=2)
    t0 = time.monotonic()
    both = [q.submit(np.zeros(8 + i, np.int16), 8000) for i in range(2)]
    assert sorted(f.result(5).text for f in both) == ["len8", "len9"]
    assert time.monotonic() - t0 < 0.5  # side by side, not 0.6 s one after the other
    busy = q.submit(np.zeros(8, np.int16), 8000)
    time.sleep(0.05)
    with pytest.raises(Busy):  # one lane decodes a final: the other stays free for the next final
        q.submit(np.zeros(8, np.int16), 8000, PRIORITY_PARTIAL, optional=True)
    busy.result(5)
    assert q.submit(np.zeros(8, np.int16), 8000, PRIORITY_PARTIAL, optional=True).result(5).text == "len8"
    q.close()


def test_two_lanes_share_the_waiting_callers_instead_of_one_lane_taking_them_all():
    """Eight callers who stop together: the lane that frees first takes its share, not a batch of four while the
    other lane idles (a lane is one thread: a core stayed unused and the second half waited ~1.2 s longer)."""
    batches: list[int] = []
    gate = threading.Event()

    def dec(items, **kw):  # whisper's cost grows with the batch: ~0.1 s an utterance here
        gate.wait()
        time.sleep(0.1 * len(items))
        batches.append(len(items))
        return [Transcript("x", 1.0, 0.1, 0.0) for _ in items]

    q = DecodeQueue(dec, max_batch=4, max_wait_s=10, batch_s_guess=0.1, lanes=2)
    running = [q.submit(np.zeros(8, np.int16), 8000) for _ in range(2)]
    time.sleep(0.1)  # one on each lane, held
    waiting = [q.submit(np.zeros(8, np.int16), 8000) for _ in range(4)]
    t0 = time.monotonic()
    gate.set()
    for f in running + waiting:
        f.result(5)
    took = time.monotonic() - t0
    q.close()
    assert sorted(batches) == [1, 1, 2, 2], batches
    assert took < 0.5, took  # 0.1 + 0.2 side by side, not 0.1 + 0.4 on one lane


def test_an_idle_queue_takes_a_lone_caller_after_a_slow_batch_of_four():
    """The wait is the cost per utterance times the jobs ahead: a batch of four that took 3.2 s on a busy CPU
    (0.8 s each) must not make an idle queue refuse the next caller, as it refused all 8 of a second round."""
    dec = TimedDecoder(0.01)
    q = DecodeQueue(dec, max_batch=4, max_wait_s=3.0)
    q._recent.append((3.2, 4))
    assert q.expected_wait_s() == pytest.approx(0.8)
    assert q.submit(np.zeros(8, np.int16), 8000).result(5).text == "len8"
    q._recent.append((2.0, 1))  # but one utterance that slow: a second in line would wait past the bound
    dec.gate.clear()
    held = q.submit(np.zeros(8, np.int16), 8000)
    time.sleep(0.05)
    with pytest.raises(Busy):
        q.submit(np.zeros(8, np.int16), 8000)
    dec.gate.set()
    held.result(5)
    q.close()
