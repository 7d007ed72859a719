#!/usr/bin/env python3
"""Render a second held-out spoken-number set, in voices further from the project's than any trained on.

The digit reader (asr/digit_reader.py) is fitted on the project voice with its pitch moved by at most
±300 cents (scripts/render_digit_train.py). Here 32 mobile numbers and 16 query codes are said with the
pitch and formants moved 450-700 cents up or down (a higher or a deeper speaker), at duration scale
0.8-1.25, 0 to -15 dB, noise at 15-35 dB SNR, through the telephone chain. Seed 9103; never fitted or
tuned on — it measures how far the reader carries past the voices it was fitted on.

    var/tts-venv/bin/python scripts/render_number_voices.py [--force]
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import render_number_eval as ne  # noqa: E402
import render_prompts as rp  # noqa: E402

OUT = rp.REPO_ROOT / "tests" / "data" / "number_voices"


def main() -> int:
    out = ne.output_dir(__doc__, OUT)
    if out is None:
        return 0
    manifest = out / "manifest.jsonl"
    rng = random.Random(9103)
    rows = []
    for k in range(48):
        if k < 32:
            kind, digits = "phone", "1" + rng.choice("35789") + "".join(rng.choice("0123456789") for _ in range(9))
            groups = rng.choice([(), (3, 4), (3, 4)])
        else:
            kind, digits = "code", "".join(rng.choice("0123456789") for _ in range(6))
            groups = rng.choice([(), (3,)])
        cents = rng.randint(450, 700) * (1 if k % 2 else -1)
        rows.append({"file": f"v{k:02d}.wav", "kind": kind, "text": ne.say(digits, rng, groups), "expect": digits,
                     "cents": cents, "speed": round(rng.uniform(0.8, 1.25), 2),
                     "gain_db": -round(rng.uniform(0, 15), 1), "snr_db": round(rng.uniform(15, 35), 1)})
    out.mkdir(parents=True, exist_ok=True)
    synth = rp.Synthesizer()
    noise_rng = np.random.default_rng(9103)
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            synth.engine.speed = row["speed"]
            a = ne.degrade(rp.finish(synth.synthesize(row["text"]), rp.SAMPLE_RATE), row["gain_db"], row["snr_db"],
                           noise_rng)
            ne.to_phone_line(a, out / row["file"], Path(tmp), row["cents"])
    manifest.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} numbers in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
