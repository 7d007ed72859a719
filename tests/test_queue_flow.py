"""The handoff verb's queue logic (ivr/queueing.py) on a simulated call: no SIP, real timers."""

from __future__ import annotations

import asyncio
import wave
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from ivr.audio import Clip, PromptLibrary
from ivr.contract import (
    BridgeCommand,
    BridgeUpdate,
    HandoffRequested,
    MessageRecorded,
    PromptPlayed,
    QueueJoined,
    QueueLeft,
    QueueStatus,
)
from ivr.flow.channel import PlayResult
from ivr.flow.context import FlowContext
from ivr.flow.services import CallServices
from ivr.queueing import number_prompts, position_text, run_handoff, zh_number
from ivr.settings import BUNDLED_PROMPTS, OfficeHours, WorkingHours
from ivr.verbs.handoff import Handoff
from tests.fakes import FakeChannel
from work_orders.calendar import WorkCalendar

SPEED = 20.0  # prompts play 20x faster than real time


class SimChannel(FakeChannel):
    """A caller on a simulated line: prompts take (duration / SPEED), keys and hub commands on cue."""

    call_id = "sim"
    hears = True

    def __init__(self, rate: int = 8000, voice_s: float = 0.0):
        super().__init__(rate)
        self.digits: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.played: list[tuple[str, int, bool]] = []
        self._stop = asyncio.Event()
        self.voice_s = voice_s  # the caller speaks this long after the beep, then is silent

    async def play(self, clip: Clip, barge_in: bool) -> PlayResult:
        self._stop.clear()
        dur = clip.duration_ms / 1000 / SPEED
        t0 = asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(self._stop.wait(), dur)
            ms = int((asyncio.get_running_loop().time() - t0) * SPEED * 1000)
            self.played.append((clip.name, ms, True))
            return PlayResult(ms, True)
        except TimeoutError:
            self.played.append((clip.name, clip.duration_ms, False))
            return PlayResult(clip.duration_ms, False)

    def stop_prompt(self) -> None:
        self._stop.set()

    def press(self, digit: str) -> None:
        self._stop.set()  # barge-in
        self.digits.put_nowait((digit, "rfc4733"))

    def command(self, cmd) -> None:
        """What CallSession.on_command does with queue commands."""
        if isinstance(cmd, QueueStatus):
            self.queue_status = cmd
        if self.queued:
            self.inbox.put_nowait(cmd)

    def has_digits(self) -> bool:
        return not self.digits.empty()

    async def next_digit(self, timeout: float):
        try:
            return await asyncio.wait_for(self.digits.get(), timeout)
        except TimeoutError:
            return None

    def flush_digits(self) -> None:
        while not self.digits.empty():
            self.digits.get_nowait()

    async def audio_chunks(self):
        t = 0.0
        rng = np.random.default_rng(1)
        while True:
            loud = t < self.voice_s
            pcm = (rng.normal(0, 3000 if loud else 20, self.rate // 10)).astype("<i2").tobytes()
            t += 0.1
            await asyncio.sleep(0.1 / SPEED)
            yield pcm


class Link:
    connected = True


@pytest.fixture(scope="module")
def prompts() -> PromptLibrary:
    return PromptLibrary(BUNDLED_PROMPTS, 8000)


def context(prompts, ch, tmp_path, **extra) -> tuple[FlowContext, list]:
    events: list = []

    def emit(cls, **kw):
        events.append((cls, kw))

    ch.emit = emit  # the bridge leg emits through the session
    ctx = FlowContext(channel=ch, prompts=prompts, emit=emit, node="operator",
                      services=CallServices(**{"recordings_dir": tmp_path, **extra}))
    return ctx, events


def of(events, cls) -> list[dict]:
    return [kw for c, kw in events if c is cls]


def test_counts_are_said_as_people_say_them():
    assert [zh_number(n) for n in (1, 2, 3, 10, 12, 20, 35, 99, 105)] == [
        "一", "两", "三", "十", "十二", "二十", "三十五", "九十九", "一零五"]
    assert number_prompts(2) == ["number_two"]
    assert number_prompts(23) == ["digit_2", "number_ten", "digit_3"]
    assert position_text(3) == "您前面还有三位，请耐心等待；如需回电请按1。"
    assert position_text(0).startswith("您是下一位")


def test_working_hours_on_the_hotline_calendar(tmp_path):
    wh = WorkingHours()
    sh = ZoneInfo("Asia/Shanghai")
    # China's official schedule with nothing configured: Sunday 28 Sep 2025 is a make-up working day (调休)
    assert wh.is_open(datetime(2025, 9, 29, 8, 30, tzinfo=sh))  # Monday 08:30
    assert not wh.is_open(datetime(2025, 9, 29, 8, 29, tzinfo=sh))
    assert not wh.is_open(datetime(2025, 9, 29, 17, 30, tzinfo=sh))
    assert not wh.is_open(datetime(2025, 9, 27, 10, 0, tzinfo=sh))  # Saturday
    assert wh.is_open(datetime(2025, 9, 28, 10, 0, tzinfo=sh))  # Sunday, a make-up working day
    assert not wh.is_open(datetime(2025, 10, 1, 10, 0, tzinfo=sh))  # National Day
    assert wh.is_open(datetime(2025, 9, 29, 2, 0, tzinfo=ZoneInfo("UTC")))  # 10:00 in Beijing
    # the court's holiday file (work_orders.holiday_file, the one the work-order deadlines read) on top
    f = tmp_path / "holidays.yaml"
    f.write_text("holidays: [2025-09-29, 2027-02-08]\nworkdays: [2025-09-27, 2027-02-06]\n", encoding="utf-8")
    hours = OfficeHours(wh, WorkCalendar.from_file(f))
    assert not hours.is_open(datetime(2025, 9, 29, 10, 0, tzinfo=sh))  # a court closure on a Monday
    assert hours.is_open(datetime(2025, 9, 27, 10, 0, tzinfo=sh))  # a Saturday the court works
    assert not hours.is_open(datetime(2027, 2, 8, 10, 0, tzinfo=sh))  # beyond chinesecalendar: the file says
    assert hours.is_open(datetime(2027, 2, 6, 10, 0, tzinfo=sh))
    assert hours.is_open(datetime(2027, 2, 9, 10, 0, tzinfo=sh))  # unknown year, not in the file: Mon-Fri
    assert WorkingHours(mode="open").is_open() and not WorkingHours(mode="closed").is_open()
    assert OfficeHours(WorkingHours(mode="open"), WorkCalendar.from_file(f)).is_open()
    with pytest.raises(ValueError):
        WorkingHours(open="18:00", close="09:00")
    for key in ("holidays", "workdays", "days"):  # the lists this section had: one calendar now
        with pytest.raises(ValueError, match=r"work_orders\.holiday_file"):
            WorkingHours.model_validate({key: []})


async def test_without_the_hub_the_caller_hears_staff_will_call_back(prompts, tmp_path):
    ch = SimChannel()
    ctx, events = context(prompts, ch, tmp_path, hub_link=None, working_hours=WorkingHours(mode="open"))
    outcome = await run_handoff(ctx, Handoff(reason="caller_request"))
    assert outcome.cause == "handoff_unavailable"
    assert of(events, QueueLeft) == [{"node": "operator", "outcome": "no_hub"}] and not of(events, QueueJoined)
    assert [p[0] for p in ch.played] == ["handoff", "handoff_unavailable"]
    # the reply to the caller starts at its first sound: the file's ~100 ms of lead silence is not played
    assert ch.played[0][1] <= prompts.get("handoff").duration_ms - 60, ch.played


async def test_after_hours_the_caller_leaves_a_message(prompts, tmp_path):
    ch = SimChannel(voice_s=2.0)
    ctx, events = context(prompts, ch, tmp_path, hub_link=Link(), working_hours=WorkingHours(mode="closed"))
    outcome = await run_handoff(ctx, Handoff(reason="caller_request", category="consult"))
    assert outcome.cause == "after_hours_message"
    assert of(events, HandoffRequested)[0]["category"] == "consult"
    assert of(events, QueueLeft) == [{"node": "operator", "outcome": "after_hours"}]
    msg = of(events, MessageRecorded)
    assert len(msg) == 1 and msg[0]["purpose"] == "after_hours" and msg[0]["recording"] == "sim-after_hours.wav"
    # 2 s of voice, then 3 s of silence end it
    assert msg[0]["duration_s"] == pytest.approx(5.0, abs=0.25), msg
    with wave.open(str(tmp_path / "sim-after_hours.wav")) as w:
        assert w.getframerate() == 8000 and w.getnframes() / 8000 == pytest.approx(msg[0]["duration_s"], abs=0.01)
    assert [p[0] for p in ch.played] == ["after_hours", "beep", "message_goodbye"]


async def test_position_announcements_then_callback_by_pressing_1(prompts, tmp_path):
    ch = SimChannel(voice_s=1.0)
    ctx, events = context(prompts, ch, tmp_path, hub_link=Link(), working_hours=WorkingHours(mode="open"))
    verb = Handoff(reason="caller_request", announce_every_s=5, max_wait_s=120)
    task = asyncio.create_task(run_handoff(ctx, verb))
    await asyncio.sleep(0.3)  # handoff prompt (~3 s / SPEED), then music
    assert of(events, QueueJoined) and ch.queued
    ch.command(QueueStatus(call_id="sim", position=3, operators_ready=0))
    await asyncio.sleep(0.6)
    names = [p[0] for p in ch.played]
    assert names[0] == "handoff" and "hold_music" in names and "queue_position:3" in names, names
    assert ch.played[0][1] <= prompts.get("handoff").duration_ms - 60, ch.played  # from its first sound
    ch.command(QueueStatus(call_id="sim", position=3, operators_ready=0))  # unchanged: not said again
    await asyncio.sleep(0.3)
    assert [p[0] for p in ch.played].count("queue_position:3") == 1
    ch.press("1")
    outcome = await asyncio.wait_for(task, 10)
    assert outcome.cause == "queue_callback"
    assert of(events, QueueLeft) == [{"node": "operator", "outcome": "callback"}]
    assert of(events, MessageRecorded)[0]["purpose"] == "callback"
    names = [p[0] for p in ch.played]
    assert names[-3:] == ["callback_message", "beep", "callback_goodbye"], names
    announced = [kw for kw in of(events, PromptPlayed) if kw["prompt"] == "queue_position:3"]
    assert announced and announced[0]["duration_ms"] > 4000  # 您前面还有 三 位，请耐心等待；如需回电请按1


async def test_the_periodic_announcement_without_a_position_and_max_wait(prompts, tmp_path):
    ch = SimChannel()
    ctx, events = context(prompts, ch, tmp_path, hub_link=Link(), working_hours=WorkingHours(mode="open"))
    verb = Handoff(announce_every_s=5, max_wait_s=7, callback_message=False, callback_prompt=None)
    t0 = asyncio.get_running_loop().time()
    outcome = await asyncio.wait_for(run_handoff(ctx, verb), 15)
    took = asyncio.get_running_loop().time() - t0
    assert outcome.cause == "queue_max_wait" and 7 <= took < 9, took
    assert of(events, QueueLeft) == [{"node": "operator", "outcome": "max_wait"}]
    names = [p[0] for p in ch.played]
    assert "queue_wait" in names and names[-2:] == ["queue_max_wait", "callback_goodbye"], names
    assert not of(events, MessageRecorded)


async def test_a_bridge_without_sip_fails_and_the_caller_stays_queued(prompts, tmp_path):
    ch = SimChannel()
    ctx, events = context(prompts, ch, tmp_path, hub_link=Link(), working_hours=WorkingHours(mode="open"))
    task = asyncio.create_task(run_handoff(ctx, Handoff(announce_every_s=5, max_wait_s=60)))
    await asyncio.sleep(0.3)
    ch.command(BridgeCommand(call_id="sim", offer_id="o1", target="sip:op@127.0.0.1:1"))
    await asyncio.sleep(0.3)
    assert of(events, BridgeUpdate) == [{"offer_id": "o1", "target": "sip:op@127.0.0.1:1", "state": "failed",
                                         "reason": "no_sip"}]
    assert not task.done() and ch.queued
    # the caller hangs up: the session runs the queue's cleanup before CallEnded
    task.cancel()
    for cleanup in ch.cleanups:
        cleanup()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert of(events, QueueLeft) == [{"node": "operator", "outcome": "hangup"}]


def test_handoff_arguments_are_validated():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Handoff(callback_key="12")
    with pytest.raises(ValidationError):
        Handoff(announce_every_s=1)
    with pytest.raises(ValidationError):
        Handoff(callback_prompt=None)
    refs = Handoff().prompt_refs()
    assert {"hold_music", "queue_ahead", "number_ten", "callback_message", "after_hours", "beep"} <= set(refs)
    assert all(PromptLibrary(BUNDLED_PROMPTS, 8000).exists(r) for r in refs)


async def test_an_operator_leg_needs_a_free_call_slot(prompts, tmp_path):
    """4 calls per process: an operator leg takes a slot; without one the offer fails with no_slot."""
    from types import SimpleNamespace

    from ivr.worker import Worker

    w = Worker.__new__(Worker)
    w.cfg = SimpleNamespace(sip=SimpleNamespace(max_calls_per_worker=4))
    w.sessions, w.legs, w.draining = {"a": 1, "b": 2, "c": 3}, 0, False
    assert w.reserve_leg() and w.legs == 1
    assert not w.reserve_leg() and not w._slot_free()  # 3 callers + 1 operator leg: full, new callers get 486
    w.release_leg()
    assert w._slot_free()

    class FullHost:
        def reserve_leg(self) -> bool:
            return False

    ch = SimChannel()
    ch.host = FullHost()
    ctx, events = context(prompts, ch, tmp_path, hub_link=Link(), working_hours=WorkingHours(mode="open"))
    task = asyncio.create_task(run_handoff(ctx, Handoff(announce_every_s=5, max_wait_s=60)))
    await asyncio.sleep(0.2)
    ch.command(BridgeCommand(call_id="sim", offer_id="o9", target="sip:op@127.0.0.1:1"))
    await asyncio.sleep(0.3)
    assert [(e["state"], e["reason"]) for e in of(events, BridgeUpdate)] == [("failed", "no_slot")]
    assert not task.done() and ch.queued
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_sip_failures_become_stable_reasons():
    from ivr.bridge import failure_reason

    assert [failure_reason(c, p) for c, p in [(486, "Busy Here"), (603, "Decline"), (480, "Temporarily Unavailable"),
                                             (404, "Not Found"), (500, "Server Internal Error"),
                                             (503, "Service Unavailable")]] == [
        "busy", "declined", "no_answer", "not_found", "server_internal_error", "unreachable"]


class FakeSpeech:
    """A vosk-protocol speech service: a final every 5th chunk, the rest at eof; TTS is a 1 s tone."""

    def __init__(self) -> None:
        self.tts: list[str] = []
        self.configs: list[dict] = []

    async def handler(self, ws) -> None:
        import json

        n = 0
        async for msg in ws:
            if isinstance(msg, bytes):
                n += 1
                await ws.send(json.dumps({"text": f"第{n // 5}句"} if n % 5 == 0 else {"partial": f"第{n // 5 + 1}"},
                                         ensure_ascii=False))
                continue
            data = json.loads(msg)
            if "config" in data:
                self.configs.append(data["config"])
            elif "tts" in data:
                self.tts.append(data["tts"]["text"])
                await ws.send(np.full(data["tts"]["rate"], 1000, dtype="<i2").tobytes())
            elif "eof" in data:
                await ws.send(json.dumps({"text": "最后"}, ensure_ascii=False))
                await ws.close()
                return


async def test_bridged_legs_are_transcribed_with_their_speaker_and_positions_spoken_by_the_voice(prompts, tmp_path):
    from websockets.asyncio.server import serve

    from ivr.bridged import transcribe_leg
    from ivr.contract import SpeechHeard
    from ivr.queueing import QueueWait
    from ivr.speech_client import transcribe_pcm

    fake = FakeSpeech()
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        ch = SimChannel()
        ctx, events = context(prompts, ch, tmp_path, speech_url=url)

        async def chunks(k: int):
            for _ in range(k):
                yield bytes(1600)

        await transcribe_leg(ctx, "operator", chunks(11), url)
        heard = of(events, SpeechHeard)
        finals = [(h["speaker"], h["text"]) for h in heard if h["kind"] == "final"]
        assert finals == [("operator", "第1句"), ("operator", "第2句"), ("operator", "最后")]
        assert {h["speaker"] for h in heard} == {"operator"} and any(h["kind"] == "partial" for h in heard)
        assert fake.configs[0]["priority"] == 1 and fake.configs[0]["sample_rate"] == 8000

        assert await transcribe_pcm(url, bytes(16000 * 2), 8000) == "第1句第2句第3句第4句最后"  # 20 chunks

        ch.queue_status = QueueStatus(call_id="sim", position=12, operators_ready=0)
        clip = await QueueWait(ctx, Handoff())._announcement()
        assert fake.tts == ["您前面还有十二位，请耐心等待；如需回电请按1。"]
        assert clip.name == "queue_position:12" and clip.duration_ms == 1000
    # without the voice: the bundled prompts, joined
    ctx.services = replace(ctx.services, speech_url="ws://127.0.0.1:1")
    clip = await QueueWait(ctx, Handoff())._announcement()
    assert clip.name == "queue_position:12" and clip.duration_ms > 4000


async def test_the_last_words_before_a_hang_up_reach_the_record_for_either_side(prompts, tmp_path):
    """Both sides' speech still being decoded when the talk ends (the judge's team or an operator hangs up) is
    not dropped: each side's audio ends, the service decodes what was left ({"eof": 1}), and the line is kept."""
    from types import SimpleNamespace

    from websockets.asyncio.server import serve

    from ivr import bridged
    from ivr.bridged import end_talk, start_talk
    from ivr.contract import SpeechHeard

    ended = asyncio.Event()

    async def side():  # speaks 3 chunks (no final yet: the service finals every 5th), until the call ends
        for _ in range(3):
            yield bytes(1600)
        await ended.wait()

    class Channel(SimChannel):
        def audio_chunks(self):
            return side()

    fake = FakeSpeech()
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        ctx, events = context(prompts, Channel(), tmp_path, speech_url=url)
        talk = start_talk(ctx, SimpleNamespace(operator_chunks=side, taps=[]), "judge")
        await asyncio.sleep(0.3)
        end_talk(ctx, talk)  # as ivr/judge_call.py does when the judge's team hangs up
        ended.set()
        await asyncio.wait_for(asyncio.gather(*talk.tasks, return_exceptions=True), 5)
    finals = sorted((h["speaker"], h["text"]) for h in of(events, SpeechHeard) if h["kind"] == "final")
    assert finals == [("caller", "最后"), ("operator", "最后")]
    assert bridged.flushing() == 0
    # a side whose audio never ends (the worker is stopping and cannot wait longer): stopped, so the leg's pjsua
    # call can go before the SIP stack does
    ended.clear()
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        ctx, _ = context(prompts, Channel(), tmp_path, speech_url=url)
        talk = start_talk(ctx, SimpleNamespace(operator_chunks=side, taps=[]), "judge")
        end_talk(ctx, talk)
        await asyncio.sleep(0.3)
        assert bridged.flushing() == 2
        await asyncio.wait_for(bridged.stop_flushing(), 2)
        assert bridged.flushing() == 0 and all(t.done() for t in talk.tasks)


async def test_the_record_verb_re_records_on_2(prompts, tmp_path):
    from ivr.flow.menu import parse_menu

    menu = parse_menu("start: m\nnodes:\n  m:\n    - record: {purpose: contact_judge, prompt: contact_judge_intro, "
                      "confirm: true, max_s: 3}\n    - hangup\n", "t.yaml", prompts)
    verb = menu.nodes["m"][0]
    ch = SimChannel(voice_s=10.0)  # speaks through: each take ends at max_s
    ctx, events = context(prompts, ch, tmp_path)
    task = asyncio.create_task(verb.run(ctx))
    while not any(p[0] == "record_confirm" for p in ch.played):
        await asyncio.sleep(0.02)
    ch.press("2")  # record again
    while [p[0] for p in ch.played].count("record_confirm") < 2:
        await asyncio.sleep(0.02)
    ch.press("1")
    assert await asyncio.wait_for(task, 10) is None
    names = [p[0] for p in ch.played]
    assert names == ["contact_judge_intro", "beep", "record_confirm", "beep", "record_confirm"], names
    msg = of(events, MessageRecorded)
    assert len(msg) == 1 and msg[0]["purpose"] == "contact_judge"
    assert msg[0]["duration_s"] == pytest.approx(3.0, abs=0.15)
