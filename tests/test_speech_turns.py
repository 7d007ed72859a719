"""Long speech, spoken numbers and bad input (issue 14): the real whisper-base model on the rendered set
in tests/data/speech_turns (scripts/render_speech_turns.py, the project voice through a telephone chain).

Bounds are the figures bench/speech_turns.py measured, with room for thread and library noise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from asr.audio import read_wav
from asr.leveling import level
from asr.metrics import cer
from asr.numbers import case_alternatives, parse_spoken_case_number, to_digits, unleak
from asr.repetition import cut_loop, longest_run
from asr.segment import split_at_pauses
from asr.settings import AsrSettings
from asr.sound import nearest
from ivr.listening import read_back
from tests.fakes import FakeChannel

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "speech_turns"
EVAL = ROOT / "tests" / "data" / "number_eval"
VOICES = ROOT / "tests" / "data" / "number_voices"
MODEL = ROOT / "var" / "models" / "whisper-base"
LENGTH = {"phone": 11, "code": 6, "id": 18}


def manifest() -> list[dict]:
    return [json.loads(line) for line in (DATA / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]


# ------------------------------------------------------------------ pure parts


def test_repetition_guard_cuts_loops_of_characters_and_of_whole_phrases():
    assert cut_loop("执行库割割割割剈剈剈剈剈") == ("执行库割", True)
    assert cut_loop("诉讼费诉讼费诉讼费诉讼费诉讼费") == ("诉讼费", True)
    assert cut_loop("我想查一下案件进度") == ("我想查一下案件进度", False)
    assert cut_loop("谢谢谢") == ("谢谢谢", False)
    assert cut_loop("转人工转人工转人工") == ("转人工转人工转人工", False)  # emphasis, not a loop
    # a phrase looped three or more times (an operator's 上诉期限是多少天, heard on a bridged call)
    assert cut_loop("上诉、执行是多少天。" * 8) == ("上诉、执行是多少天。", True)
    assert cut_loop("你好，我想问一下。" + "诉讼费怎么交，" * 3) == ("你好，我想问一下。诉讼费怎么交，", True)
    assert cut_loop("我要投诉，我要投诉，") == ("我要投诉，我要投诉，", False)
    # a phone number may repeat a digit a few times; eight is a loop
    assert cut_loop("13888888123", digits=True) == ("13888888123", False)
    assert cut_loop("1388888888888", digits=True)[1]
    assert longest_run("割割割割割割割割") == 8


def test_agc_lifts_quiet_speech_and_leaves_silence_and_dc_alone():
    rng = np.random.default_rng(1)
    speech_like = (rng.normal(0, 1, 16000) * np.sin(np.linspace(0, 40, 16000)) ** 2).astype(np.float32)
    quiet = speech_like * 0.003  # about -55 dBFS
    out, gain = level(quiet)
    assert gain > 20 and np.sqrt(np.mean(out ** 2)) > 10 * np.sqrt(np.mean(quiet ** 2))
    assert np.abs(out).max() <= 1.0
    silent, g0 = level(np.zeros(16000, dtype=np.float32))
    assert g0 == 0.0 and not silent.any()
    dc, g1 = level(np.full(16000, 0.4, dtype=np.float32))
    assert g1 == 0.0 and np.abs(dc).max() < 1e-6  # DC removed, nothing amplified


def test_long_audio_is_cut_in_pauses_and_windows_without_speech_are_dropped():
    probs = np.full(1000, 0.9, dtype=np.float32)  # 32 s of VAD windows
    probs[200:210] = 0.05  # a pause at ~6.6 s
    probs[450:460] = 0.05  # ~14.6 s
    probs[600:1000] = 0.0  # silence from 19.2 s
    ranges = split_at_pauses(1000 * 512, probs, window_s=10)
    assert all(e - b <= 9.7 * 16000 for b, e in ranges)
    assert ranges[0][1] == 205 * 512 and ranges[1][1] == 455 * 512  # cut in the pauses
    assert ranges[-1][1] <= 700 * 512 or all(probs[b // 512:e // 512].max() > 0.5 for b, e in ranges)


def test_spoken_numbers_are_read_as_digits_and_case_numbers_by_sound():
    assert to_digits("幺三八，零五七幺，两四六") == "1380571246"
    # a digits-only decode may finish 幺 (E5 B9 BA) or 零 on another numeral's last byte: 幼, 雼
    assert to_digits(unleak("幼七七雼四叉")) == "17704X"
    assert parse_spoken_case_number("二零二五乡零四行初四二零九号").canonical == "（2025）湘04行初4209号"
    assert parse_spoken_case_number("二零二四折零九七七行出二千七百二十九号").canonical == "（2024）浙0977行初2729号"
    assert parse_spoken_case_number("二零二四乡零二二九民中四九零号").canonical == "（2024）湘0229民终490号"
    # what whisper wrote for 二零二五浙零九两五执恢幺四五四号: 这 ~ 浙, 集会 ~ 执恢, 要 ~ 幺
    assert parse_spoken_case_number("二零二五这零九两五集会要四五四号。").canonical == "（2025）浙0925执恢1454号"
    assert parse_spoken_case_number("二零二五乡零四行出四七二百零九号。").seq == 4209  # 七 before 二百: 千
    assert parse_spoken_case_number("二零二三苏零四民初第幺零六七八号").canonical == "（2023）苏04民初10678号"
    # the province was lost: a numeral there is not read as 宁 (ling ~ ning)
    assert parse_spoken_case_number("二零二四零五四零五民初幺三三一号") is None
    assert parse_spoken_case_number("我想问一下案件进度") is None
    assert case_alternatives("（2024）浙0977行初2729号") == ["（2024）浙0977行初2729号", "（2024）浙0977刑初2729号"]
    assert read_back("13805710246", "digits") == "幺三八，零五七幺，零二四六"


def test_syllables_are_matched_by_sound_with_a_unique_best():
    assert nearest("乡", ["湘", "京", "沪"]) == "湘"
    assert nearest("指挥", ["执恢", "执异", "民初"]) == "执恢"
    assert nearest("五", ["沪", "豫"]) is None  # wu is as close to hu as to yu: no guess
    assert nearest("号", ["沪", "京"]) is None  # too far from both


# ------------------------------------------------------------------ with the model


@pytest.fixture(scope="module")
def engine():
    from asr.whisper_engine import WhisperEngine

    return WhisperEngine(MODEL, AsrSettings())


def test_long_utterances_are_decoded_whole_about_as_well_as_their_sentences_alone(engine):
    rows = manifest()
    sent = [r for r in rows if r["kind"] == "sentence"]
    longs = [r for r in rows if r["kind"] == "long"][:10]  # includes two quiet (-30 dB) callers
    assert sum(r["quiet"] for r in longs) == 2 and all(10 <= r["seconds"] <= 42 for r in longs)
    hyps = [engine.transcribe(*read_wav(DATA / r["file"])) for r in longs]
    used = sorted({i for r in longs for i in r["sentences"]})
    alone = {i: engine.transcribe(*read_wav(DATA / sent[i]["file"])).text for i in used}
    cer_alone = cer([(sent[i]["text"], alone[i]) for r in longs for i in r["sentences"]])
    cer_long = cer([(r["text"], h.text) for r, h in zip(longs, hyps, strict=True)])
    print(f"\nlong CER {cer_long:.1%}, same sentences alone {cer_alone:.1%}, "
          f"windows {[h.info.get('windows') for h in hyps]}")
    assert all(h.info["windows"] >= 2 for h in hyps if h.audio_s > 12)
    assert max(longest_run(h.text) for h in hyps) < 8
    assert cer_long <= 1.3 * cer_alone + 0.01
    quiet = [(r["text"], h.text) for r, h in zip(longs, hyps, strict=True) if r["quiet"]]
    assert cer(quiet) < 0.2  # a caller 30 dB quieter is heard after leveling


def _sixty_second_message() -> tuple[np.ndarray, str]:
    rows = [r for r in manifest() if r["kind"] == "long"]
    pcm, text = [], []
    for r in rows:
        if sum(len(p) for p in pcm) >= 60 * 8000:
            break
        if r["quiet"]:
            continue
        pcm += [read_wav(DATA / r["file"])[0], np.zeros(4000, dtype=np.int16)]
        text.append(r["text"])
    return np.concatenate(pcm), "".join(text)


@pytest.fixture(scope="module")
def service_url(engine):
    with _serving(engine) as url:
        yield url


@contextlib.contextmanager
def _serving(engine):
    """A speech service on the module's engine (its own decode queue) on a loopback port, in a thread."""
    from websockets.asyncio.server import serve

    from asr.service import SpeechService

    service = SpeechService(AsrSettings(), engine.transcribe_many, max_wait_s=20.0)
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    box: dict = {}

    async def main():
        async with serve(service.handle, "127.0.0.1", 0, max_size=1 << 20) as server:
            box["port"] = server.sockets[0].getsockname()[1]
            await stop.wait()

    t = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    t.start()
    while "port" not in box:
        time.sleep(0.05)
    try:
        yield f"ws://127.0.0.1:{box['port']}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        t.join(5)
        if service.queue is not None:
            service.queue.close()


def test_a_sixty_second_message_is_transcribed_whole(service_url):
    from ivr.speech_client import transcribe_pcm

    pcm, ref = _sixty_second_message()
    assert len(pcm) >= 60 * 8000
    text = asyncio.run(transcribe_pcm(service_url, pcm.astype("<i2").tobytes(), 8000))
    value = cer([(ref, text)])
    print(f"\n60 s message: CER {value:.1%}, {len(text)} characters for {len(ref)}")
    assert value < 0.2 and len(text) > 0.8 * len(ref)


class Saying(FakeChannel):
    """A caller on an 8 kHz line who says one clip (20 ms frames, four times real time) and then keeps quiet."""

    hears = True

    def __init__(self, pcm: np.ndarray):
        super().__init__()
        self.audio = np.concatenate([pcm, np.zeros(8000 * 8, np.int16)]).astype("<i2").tobytes()

    async def audio_chunks(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.audio), 320):
            await asyncio.sleep(0.005)
            yield self.audio[i:i + 320]


def test_a_listen_turn_that_expects_a_mobile_number_stores_its_digits(service_url):
    """The menu verb end to end: ``listen: {expect: digits, digits_length: 11}`` through the speech service;
    a number is stored as digits, an answer in words counts as no input (the flow's on_failure)."""
    from ivr.audio import PromptLibrary
    from ivr.flow.context import FlowContext
    from ivr.flow.services import CallServices
    from ivr.settings import BUNDLED_PROMPTS
    from ivr.verbs.listen import Listen

    rows = {r["file"]: r for r in manifest()}
    verb = Listen(store="phone", expect="digits", digits_length=11, beep=False, retries=0, on_failure="staff")
    with pytest.raises(ValueError, match="digits_length goes with expect: digits"):
        Listen(expect="case_number", digits_length=11)

    async def turn(file: str) -> tuple[object, dict]:
        ctx = FlowContext(channel=Saying(read_wav(DATA / file)[0]), prompts=PromptLibrary(BUNDLED_PROMPTS, 8000),
                          node="phone", services=CallServices(speech_url=service_url), emit=lambda cls, **kw: None)
        return await asyncio.wait_for(verb.run(ctx), 30), ctx.vars

    outcome, stored = asyncio.run(turn("num/n00.wav"))
    assert outcome is None and stored["phone"] == rows["num/n00.wav"]["expect"] == "15063860842", stored
    outcome, stored = asyncio.run(turn("sent/s03.wav"))  # 我想去法院起诉他
    assert "phone" not in stored and getattr(outcome, "node", None) == "staff", (outcome, stored)


def test_a_caller_may_key_the_number_a_listen_turn_asks_for(service_url):
    """Keys still work where a spoken number is expected: the first key stops the prompt and the recognizer and
    wins over what is said; the entry ends at digits_length keys (or "#"), and each key is on the record."""
    from ivr.audio import PromptLibrary
    from ivr.contract import DigitsReceived
    from ivr.flow.context import FlowContext
    from ivr.flow.services import CallServices
    from ivr.settings import BUNDLED_PROMPTS
    from ivr.verbs.listen import Listen

    verb = Listen(store="phone", expect="digits", digits_length=11, beep=False, retries=0, on_failure="staff")

    async def turn(keys: str) -> tuple[object, dict, FakeChannel, list]:
        channel = Saying(read_wav(DATA / "sent/s03.wav")[0])  # 我想去法院起诉他, said while the caller keys
        emitted: list = []
        ctx = FlowContext(channel=channel, prompts=PromptLibrary(BUNDLED_PROMPTS, 8000), node="phone",
                          services=CallServices(speech_url=service_url),
                          emit=lambda cls, **kw: emitted.append((cls, kw)))

        async def press() -> None:
            await asyncio.sleep(0.3)
            channel.pending.extend(keys)

        presser = asyncio.create_task(press())
        outcome = await asyncio.wait_for(verb.run(ctx), 30)
        await presser
        return outcome, ctx.vars, channel, emitted

    outcome, stored, channel, emitted = asyncio.run(turn("13800138000"))
    assert outcome is None and stored["phone"] == "13800138000" and "phone_confidence" not in stored
    assert [kw["digits"] for cls, kw in emitted if cls is DigitsReceived] == list("13800138000")
    assert channel.stopped >= 1  # the first key stopped the prompt
    outcome, stored, _, _ = asyncio.run(turn("6612#"))  # a short entry ends at "#"
    assert outcome is None and stored["phone"] == "6612"


def _numbers_right(engine, data: Path, kinds: tuple[str, ...]) -> dict[str, float]:
    """Share of the spoken numbers of ``kinds`` read right (case numbers: up to 刑初/行初, which the case
    store is asked for both)."""
    rows = [json.loads(line) for line in (data / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    right: dict[str, list[bool]] = {}
    for r in rows:
        if r["kind"] not in kinds:
            continue
        kind = "case_number" if r["kind"] == "case" else "digits"
        got = engine.transcribe(*read_wav(data / r["file"]), expect=kind, length=LENGTH.get(r["kind"])).text
        right.setdefault(r["kind"], []).append(bool(got) and r["expect"] in case_alternatives(got))
    rate = {k: sum(v) / len(v) for k, v in right.items()}
    print(f"\n{data.name}: right {rate}")
    return rate


def test_spoken_numbers_on_the_tuning_set(engine):
    rate = _numbers_right(engine, DATA, ("phone", "code", "case"))
    # bench/speech_turns.py --numbers-only: phones 14/14, codes 8/8 by the digit reader (whisper's decoder
    # alone: 12/14, 6/8); case numbers, still whisper's: 7/12 by sound. The encoder's int8 arithmetic differs
    # between CPUs: on an AMD EPYC with AVX-512 VNNI (2026-12-08) the codes read 6/8 and case numbers 7/12, with
    # the held-out codes still 8/8
    assert rate["phone"] >= 13 / 14 and rate["code"] >= 6 / 8 and rate["case"] >= 6 / 12


def test_spoken_numbers_on_the_held_out_set(engine):
    """tests/data/number_eval: other numbers, speed 0.85/1.15, 4-16 dB quieter, noise, never tuned on."""
    rate = _numbers_right(engine, EVAL, ("phone", "code", "case"))
    # the digit reader: phones 16/16, codes 8/8 (whisper's decoder on this CPU: 3/16, 3/8). Case numbers,
    # whisper's: 2/12 on an AMD EPYC without AVX-512 VNNI (CTranslate2's int8 arithmetic differs between CPUs;
    # 3/12 on earlier VMs) -- far from the goal of 80 %; this guards the floor reached
    assert rate["phone"] >= 14 / 16 and rate["code"] >= 7 / 8 and rate["case"] >= 1 / 12


def test_spoken_numbers_in_voices_past_the_digit_readers_training(engine):
    """tests/data/number_voices: pitch and formants moved 450-700 cents (the reader was trained on +-300),
    never tuned on."""
    rate = _numbers_right(engine, VOICES, ("phone", "code"))
    # measured 26/32 phones, 13/16 codes (whisper's decoder: 9/32, 9/16); the rest read as nothing or wrong
    assert rate["phone"] >= 23 / 32 and rate["code"] >= 11 / 16


def test_a_sentence_where_a_number_was_asked_for_reads_as_no_number(engine):
    """A caller who answers 'your mobile number?' with words: the digit reader's entropy test refuses it, so
    the dialogue asks again instead of reading back digits nobody said."""
    rows = [r for r in manifest() if r["kind"] == "sentence"]
    got = [engine.transcribe(*read_wav(DATA / r["file"]), expect="digits", length=11) for r in rows]
    # measured 2/50 with some digits, none with 11 (without the test: 50/50 and 26/50)
    assert sum(bool(g.text) for g in got) <= 5 and not any(len(g.text) == 11 for g in got), [g.text for g in got]
    assert sum(g.info.get("dropped") == "not a number" for g in got) >= 40


@pytest.mark.parametrize("name", ["silence", "dc", "clipping", "noise"])
def test_sixty_seconds_of_bad_input_give_no_text_and_no_runaway(engine, name):
    from bench.speech_turns import bad_inputs

    pcm = bad_inputs()[name]
    t0 = time.perf_counter()
    tr = engine.transcribe(pcm, 8000)
    took = time.perf_counter() - t0
    assert tr.text == "", tr
    assert took < 15, took  # not one decode per fallback temperature up to the token limit


def test_the_service_keeps_serving_while_a_caller_streams_a_minute_of_noise(service_url):
    import websockets

    from bench.speech_turns import bad_inputs

    noise = bad_inputs()["noise"].astype("<i2").tobytes()
    q01, _ = read_wav(ROOT / "tests" / "data" / "speech" / "q01.wav")
    speech = bytes(8000) + q01.astype("<i2").tobytes() + bytes(16000)

    async def stream(pcm: bytes, pace: float) -> list[dict]:
        out = []
        async with websockets.connect(service_url) as ws:
            await ws.send(json.dumps({"config": {"sample_rate": 8000, "max_utterance_s": 60}}))
            for i in range(0, len(pcm), 1600):
                await ws.send(pcm[i:i + 1600])
                out.append(json.loads(await ws.recv()))
                await asyncio.sleep(pace)
            await ws.send(json.dumps({"eof": 1}))
            out.append(json.loads(await ws.recv()))
        return out

    async def both():
        return await asyncio.gather(stream(noise, 0.0), stream(speech, 0.1))

    noisy, caller = asyncio.run(both())
    assert not any(r.get("text") for r in noisy)
    finals = [r["text"] for r in caller if r.get("text")]
    assert finals and "案件" in finals[0], caller[-3:]


# ------------------------------------------------------------------ speculative finals and partials


def _stream(engine, pcm: np.ndarray, settings: AsrSettings, pace_s: float = 0.0, every: list | None = None):
    from collections import Counter

    from asr.decode_queue import PRIORITY_PARTIAL, DecodeQueue
    from asr.events import Final, Partial
    from asr.stream import StreamSession

    queue = DecodeQueue(engine.transcribe_many, max_wait_s=20.0)
    counters: Counter = Counter()

    def submit(p, r, kind):
        return queue.submit(p, r, 0 if kind == "speculative" else PRIORITY_PARTIAL, optional=True)

    session = StreamSession(8000, settings, decode=lambda p, r: queue.decode(p, r), submit=submit,
                            counters=counters)
    finals, partials = [], []
    try:
        for i in range(0, len(pcm), 800):  # 100 ms chunks, as the IVR sends them
            for ev in session.feed(pcm[i:i + 800].astype("<i2").tobytes()):
                (finals if isinstance(ev, Final) else partials if isinstance(ev, Partial) else []).append(ev)
                if every is not None:
                    every.append(ev)
            if pace_s:
                time.sleep(pace_s)
        finals += [ev for ev in session.close() if isinstance(ev, Final)]
    finally:
        queue.close()
    return finals, partials, counters, queue.stats


def _sentence(i: int) -> np.ndarray:
    return read_wav(DATA / f"sent/s{i:02d}.wav")[0]


def test_a_speculative_decode_in_the_final_silence_is_the_final_and_none_is_decoded_twice(engine):
    pcm = np.concatenate([np.zeros(4000, np.int16), _sentence(31), np.zeros(8000, np.int16)])  # 我想查一下案件进度
    settings = AsrSettings(partial_every_ms=0)
    every: list = []
    finals, _, counters, stats = _stream(engine, pcm, settings, pace_s=0.1, every=every)
    assert len(finals) == 1 and "案件" in finals[0].text
    assert finals[0].timings["speculative"] == 1.0
    assert counters["speculative"] == counters["speculative_used"] == 1 and stats.decoded == 1
    # its text is told before the endpoint when decoded by then (a dialogue may answer on it): the final's text
    from asr.events import Final, Speculative

    kinds = [type(e).__name__ for e in every]
    spec = [e for e in every if isinstance(e, Speculative)]
    assert len(spec) <= 1 and "SpeechResumed" not in kinds and isinstance(every[-1], Final), kinds
    if spec:
        assert spec[0].text == finals[0].text and kinds.index("Speculative") < kinds.index("Final")
        assert 0.2 <= spec[0].latency_s <= finals[0].timings["latency_s"] + 0.05
    print(f"\nspeculative text told {spec[0].latency_s if spec else None} s after the speech, final "
          f"{finals[0].timings['latency_s']} s")


def test_the_speculative_text_is_sent_as_soon_as_it_is_decoded_not_with_the_next_audio(engine):
    # the caller's audio 1 s into the pause, then nothing more: the text must come by itself (before, it waited for
    # the next chunk of audio, up to 100 ms after the decode). A service of its own: an idle queue takes the
    # speculative decode (a loaded one refuses it)
    import websockets.sync.client as ws_client

    # (sent faster than real time, and a long end silence: the decode cannot be done before the audio ends)
    pcm = np.concatenate([np.zeros(4000, np.int16), _sentence(31), np.zeros(8000, np.int16)])  # 我想查一下案件进度
    with _serving(engine) as url, ws_client.connect(url) as ws:
        ws.send(json.dumps({"config": {"sample_rate": 8000, "priority": 0, "end_silence_ms": 3000, "push": True}}))
        replies = []
        for i in range(0, len(pcm), 800):
            ws.send(pcm[i:i + 800].astype("<i2").tobytes())
            replies.append(json.loads(ws.recv(timeout=10)))  # one reply a chunk
        sent = time.monotonic()
        assert not any("speculative" in r for r in replies), replies  # not decoded yet when the audio ended
        msg = json.loads(ws.recv(timeout=10))
        waited = time.monotonic() - sent
    assert "案件" in msg["speculative"]["text"] and "text" not in msg, msg
    print(f"\nspeculative text {waited:.2f} s after the last audio (decoded meanwhile)")


def test_a_pause_mid_sentence_wastes_the_speculation_but_not_the_words(engine):
    # with the clips’ own 0.1 s edges: ~0.35 s of silence, longer than speculative_ms, shorter than end_silence_ms
    pause = np.zeros(int(0.15 * 8000), np.int16)
    pcm = np.concatenate([np.zeros(4000, np.int16), _sentence(0), pause, _sentence(4), np.zeros(8000, np.int16)])
    every: list = []
    finals, _, counters, _ = _stream(engine, pcm, AsrSettings(partial_every_ms=0), pace_s=0.1, every=every)
    assert len(finals) == 1, [f.text for f in finals]
    assert "立案" in finals[0].text and "材料" in finals[0].text  # both halves, one utterance
    assert counters["speculative_wasted"] >= 1 and counters["speculative_used"] == 1
    # a speculative text told in the pause is withdrawn when the caller goes on
    from asr.events import Final, Speculative, SpeechResumed

    told = [i for i, e in enumerate(every) if isinstance(e, Speculative)]
    for i in told:
        nxt = next(e for e in every[i + 1:] if isinstance(e, SpeechResumed | Final))
        assert isinstance(nxt, SpeechResumed) or nxt.text == every[i].text


def test_partials_flow_without_vosk_and_the_final_replaces_them(engine):
    row = next(r for r in manifest() if r["kind"] == "long" and not r["quiet"] and r["seconds"] < 20)
    pcm = np.concatenate([read_wav(DATA / row["file"])[0], np.zeros(8000, np.int16)])
    finals, partials, counters, _ = _stream(engine, pcm, AsrSettings(), pace_s=0.1)
    assert counters["partial"] >= 3 and len(partials) >= 2, counters
    assert finals and cer([(row["text"], "".join(f.text for f in finals))]) < 0.25
    print(f"\n{len(partials)} partials, e.g. {partials[len(partials) // 2].text!r}; counters {dict(counters)}")


def test_optional_decodes_start_on_an_idle_queue_and_are_refused_under_load():
    from asr.decode_queue import PRIORITY_PARTIAL, Busy, DecodeQueue
    from asr.whisper_engine import Transcript

    gate = threading.Event()

    def slow(items):
        gate.wait(10)
        return [Transcript("x", 1.0, 1.0, 1.0) for _ in items]

    q = DecodeQueue(slow, max_batch=2, max_wait_s=30.0, batch_s_guess=2.0)
    try:
        q._recent.extend([(5.0, 1)] * 4)  # slow recent batches must not stop speculation on an idle queue
        first = q.submit(b"\0\0" * 800, 8000, 0, optional=True)  # idle: accepted
        time.sleep(0.2)  # now running, ~5 s to go by the estimate
        with pytest.raises(Busy):
            q.submit(b"\0\0" * 800, 8000, PRIORITY_PARTIAL, optional=True)  # a partial never waits
        with pytest.raises(Busy):
            q.submit(b"\0\0" * 800, 8000, 0, optional=True)  # the running batch needs > 0.8 s more
        final = q.submit(b"\0\0" * 800, 8000, 0)  # a caller's final is always queued
        spare = q.submit(b"\0\0" * 800, 8000, 0)
        spare.cancel()  # a speculation the caller talked over: dropped before decoding
        gate.set()
        assert first.result(5).text == "x" and final.result(5).text == "x"
        assert q.stats.optional_refused == 2
        time.sleep(0.1)
        assert q.stats.cancelled == 1
    finally:
        gate.set()
        q.close()


def test_a_speech_onset_is_told_before_the_start_and_a_short_burst_gives_only_the_onset():
    from asr.settings import EndpointSettings
    from asr.vad import Endpointer

    def results(pcm: np.ndarray, s: EndpointSettings) -> list[tuple[str, float]]:
        ep = Endpointer(8000, s)
        out = []
        for i in range(0, len(pcm), 160):  # 20 ms frames
            r = ep.push(pcm[i:i + 160])
            if r is not None and r[0] in ("onset", "start"):
                out.append((r[0], ep.t))
        return out

    s = EndpointSettings()
    speech = _sentence(31)
    got = results(np.concatenate([np.zeros(4000, np.int16), speech, np.zeros(8000, np.int16)]), s)
    kinds = [k for k, _ in got]
    assert kinds[:2] == ["onset", "start"], got
    # told after barge_in_ms of speech, the start after min_speech_ms: the prompt is held ~190 ms sooner
    assert got[1][1] - got[0][1] == pytest.approx((s.min_speech_ms - s.barge_in_ms) / 1000, abs=0.045)
    # the first ~120 ms of the same speech alone: an onset (the prompt is held), no utterance
    first = int(np.flatnonzero(np.abs(speech) > 1000)[0])
    burst = speech[first:first + 960]
    got = results(np.concatenate([np.zeros(4000, np.int16), burst, np.zeros(8000, np.int16)]), s)
    assert [k for k, _ in got] in (["onset"], []), got
    assert results(np.concatenate([np.zeros(4000, np.int16), speech]), s.model_copy(update={"barge_in_ms": 0}))[0][0] \
        == "start"


def _last_utterance(name: str) -> np.ndarray:
    """The last utterance of a rendered call clip (tests/data/speech), from 0.3 s before its first sound."""
    from ivr.audio import read_wav as read_call_wav

    pcm = np.frombuffer(read_call_wav(ROOT / "tests" / "data" / "speech" / name, 8000), dtype="<i2")
    loud = np.flatnonzero(np.abs(pcm[: len(pcm) // 800 * 800]).reshape(-1, 800).max(axis=1) > 300)
    starts = [b for a, b in zip(loud[:-1], loud[1:], strict=True) if b - a > 10] or [loud[0]]
    return pcm[max(0, starts[-1] - 3) * 800:]


@pytest.mark.parametrize("line", ["silent", "faint_noise"])
def test_a_short_reply_after_seconds_of_quiet_line_keeps_its_first_word(engine, line):
    """After a long prompt the caller's line has been quiet for seconds; Silero then finds the onset 0.4-0.8 s
    late. With a 300 ms pre-roll "我要第二个" came back empty (its first syllables cut, whisper heard no speech),
    "都不是我要问的" as "" or "是我要问的"."""
    quiet = (np.zeros(80_000) if line == "silent" else np.random.default_rng(3).normal(0, 8, 40_000)).astype("<i2")
    heard = {}
    for name in ("dialogue/online_hearing_second.wav", "dialogue/online_hearing_none.wav", "q04.wav"):
        audio = np.concatenate([quiet, _last_utterance(name), np.zeros(12_000, dtype="<i2")])
        finals, _, _, _ = _stream(engine, audio, AsrSettings(partial_every_ms=0))
        heard[name] = "".join(f.text for f in finals)
    print(f"\nafter a {line} line: {heard}")
    assert "第二" in heard["dialogue/online_hearing_second.wav"], heard
    assert "不是" in heard["dialogue/online_hearing_none.wav"], heard
    assert "执行" in heard["q04.wav"], heard
