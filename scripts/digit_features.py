#!/usr/bin/env python3
"""Whisper-base encoder frames of spoken digit strings, for fitting the digit reader (asr/digit_reader.py).

Each clip goes through what the speech service does before it reads a number (AGC, the silence pad,
the 10 s window padded with silent audio, the int8 encoder); the frames that cover the audio are kept
(50 a second, 512 values, float16) with the digits said. Sets: the rendered training clips
(scripts/render_digit_train.py), and for measuring only the tuning set (tests/data/speech_turns/num)
and the held-out set (tests/data/number_eval, never fitted on).

    .venv/bin/python scripts/digit_features.py var/digit_train --out var/digit_train/feats.npz
    .venv/bin/python scripts/digit_features.py tests/data/number_eval --out var/digit_eval.npz
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asr.audio import read_wav  # noqa: E402
from asr.settings import AsrSettings  # noqa: E402
from asr.whisper_engine import WhisperEngine  # noqa: E402


def rows_of(data: Path) -> list[dict]:
    rows = []
    for path in sorted(data.glob("manifest*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            if "digits" in r:
                rows.append(r)
            elif r.get("kind") in ("phone", "code", "id"):
                rows.append({**r, "digits": r["expect"]})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=ROOT / "var" / "models" / "whisper-base")
    args = ap.parse_args()
    engine = WhisperEngine(args.model, AsrSettings(digit_reader=False))
    rows = [r for r in rows_of(args.data) if (args.data / r["file"]).exists()]
    frames, digits, files = [], [], []
    for k, r in enumerate(rows):
        pcm, rate = read_wav(args.data / r["file"])
        frames.append(engine.digit_frames(pcm, rate).astype(np.float16))
        digits.append(r["digits"])
        files.append(r["file"])
        if k % 200 == 0:
            print(f"{k}/{len(rows)}", flush=True)
    lengths = np.array([len(f) for f in frames])
    np.savez(args.out, frames=np.concatenate(frames), lengths=lengths, digits=np.array(digits),
             files=np.array(files))
    print(f"{len(rows)} clips, {lengths.sum()} frames -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
