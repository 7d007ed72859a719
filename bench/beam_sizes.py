#!/usr/bin/env python3
"""Whisper's beam size for free text: CER and decode time at several beams (the choice of ``asr.beam_size``).

The 30 rendered questions (tests/data/speech) and the 50 sentences (tests/data/speech_turns, kind sentence), as
rendered and in five copies none of them was tuned on: 1.15x faster, 0.9x slower (resampled, pitch moves too),
white noise 15 dB below the speech, 25 dB quieter, an 8-bit mu-law round trip. Each utterance is decoded alone
at every beam in a rotating order (drift spreads over the beams); the time is the whole ``transcribe_many`` call.

    nice .venv/bin/python bench/beam_sizes.py [--beams 5,3,2,1] [--quick]

Prints CER per set and beam, the decode time p50 and its ratio to the first beam's, and how many transcripts
changed against the first beam; writes bench/results/beam_sizes.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soxr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asr.audio import read_wav  # noqa: E402
from asr.metrics import cer  # noqa: E402
from asr.settings import AsrSettings  # noqa: E402
from asr.whisper_engine import WhisperEngine  # noqa: E402
from bench.results_file import write_results  # noqa: E402

SPEECH = ROOT / "tests" / "data" / "speech"
TURNS = ROOT / "tests" / "data" / "speech_turns"
SEED = 12368


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def originals() -> dict[str, list[tuple[str, np.ndarray, int, str]]]:
    q = [(r["file"], *read_wav(SPEECH / r["file"]), r["text"]) for r in _rows(SPEECH / "transcripts.jsonl")]
    s = [(r["file"], *read_wav(TURNS / r["file"]), r["text"]) for r in _rows(TURNS / "manifest.jsonl")
         if r["kind"] == "sentence"]
    return {"questions": q, "sentences": s}


def _f(p: np.ndarray) -> np.ndarray:
    return p.astype(np.float32) / 32768.0


def _i(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def _noise(p: np.ndarray, rate: int, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    x = _f(p)
    n = rate // 50
    e = (x[: len(x) // n * n].reshape(-1, n) ** 2).mean(axis=1)
    power = float(e[e > np.percentile(e, 95) * 1e-3].mean())  # the frames within 30 dB of the loud ones
    return _i(x + rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), len(x)))


def _mulaw(p: np.ndarray) -> np.ndarray:
    mu = 255.0
    x = _f(p)
    y = np.round((np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) + 1) / 2 * 255) / 255 * 2 - 1
    return _i(np.sign(y) * ((1 + mu) ** np.abs(y) - 1) / mu)


def copies(p: np.ndarray, rate: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"orig": p, "faster1.15": _i(soxr.resample(_f(p), rate, rate / 1.15)),
            "slower0.9": _i(soxr.resample(_f(p), rate, rate / 0.9)), "noise15dB": _noise(p, rate, 15.0, rng),
            "quieter25dB": _i(_f(p) * 10 ** (-25 / 20)), "mulaw": _mulaw(p)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--beams", default="5,3,2,1")
    ap.add_argument("--quick", action="store_true", help="8 of each set, as rendered and in noise only")
    args = ap.parse_args()
    beams = [int(b) for b in args.beams.split(",")]
    rng = np.random.default_rng(SEED)
    engine = WhisperEngine(ROOT / "var" / "models" / "whisper-base", AsrSettings())
    sets = originals()
    first = sets["questions"][0]
    for b in beams:
        engine.transcribe_many([(first[1], first[2])], beam_size=b)  # warm-up
    hyp: dict[tuple[str, str, int], list[tuple[str, str]]] = {}
    secs: dict[int, list[float]] = {b: [] for b in beams}
    k = 0
    for name, rows in sets.items():
        for _file, pcm, rate, ref in rows[:8] if args.quick else rows:
            for variant, audio in copies(pcm, rate, rng).items():
                if args.quick and variant not in ("orig", "noise15dB"):
                    continue
                for b in beams[k % len(beams):] + beams[:k % len(beams)]:
                    t0 = time.perf_counter()
                    text = engine.transcribe_many([(audio, rate)], beam_size=b)[0].text
                    secs[b].append(time.perf_counter() - t0)
                    hyp.setdefault((name, variant, b), []).append((ref, text))
                k += 1
    out: dict = {"beams": beams, "cer": {}, "decode_p50_s": {}, "ratio_to_first": {}, "changed_vs_first": {}}
    base = statistics.median(secs[beams[0]])
    for b in beams:
        cers = {f"{n}/{v}": round(cer(pairs), 4)
                for (n, v, bb), pairs in hyp.items() if bb == b}
        cers["mean"] = round(statistics.mean(cers.values()), 4)
        out["cer"][b] = cers
        out["decode_p50_s"][b] = round(statistics.median(secs[b]), 4)
        out["ratio_to_first"][b] = round(statistics.median(secs[b]) / base, 3)
        out["changed_vs_first"][b] = sum(h != h0 for key, pairs in hyp.items() if key[2] == b
                                         for (_, h), (_, h0) in zip(pairs, hyp[(key[0], key[1], beams[0])],
                                                                    strict=True))
        per_set = ", ".join(f"{s} {c:.3f}" for s, c in cers.items() if s != "mean")
        print(f"beam {b}: CER mean {cers['mean']:.3f} ({per_set});"
              f" decode p50 {out['decode_p50_s'][b] * 1000:.0f} ms ({out['ratio_to_first'][b]:.2f}x beam {beams[0]});"
              f" {out['changed_vs_first'][b]} transcripts differ from beam {beams[0]}", flush=True)
    write_results("beam_sizes", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
