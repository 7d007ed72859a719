#!/usr/bin/env python3
"""Long speech, spoken numbers and bad input with whisper base (issue 14, acceptance 2 and 5).

    nice .venv/bin/python bench/speech_turns.py [--long N] [--numbers-only [--vote]]

On tests/data/speech_turns (scripts/render_speech_turns.py: the project voice through the telephone
chain): CER of the 50 sentences alone vs. the 40 utterances of 10-40 s built from them (ratio, goal
≤ 1.3), the longest run of one character in any output (goal < 8), spoken numbers exactly right per
kind with ``expect`` and with a free decode, and 60 s of silence / DC / clipping / noise (goal: no
text, bounded decode time). Spoken numbers are measured on two sets: the tuning set above
(tests/data/speech_turns/num) and the held-out set tests/data/number_eval (scripts/render_number_eval.py:
other numbers, other speeds, lower levels, background noise; never tuned on), and tests/data/number_voices
(scripts/render_number_voices.py: the voice's pitch and formants moved 450-700 cents, past the digit reader's
training range; never tuned on). Case numbers count as
right strictly and "by sound" (刑初 and 行初 sound alike; the case store is asked for both, see
asr.numbers.case_alternatives). Prints the figures and writes bench/results/speech_turns.json
(``--numbers-only``: bench/results/spoken_numbers.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asr.audio import read_wav  # noqa: E402
from asr.metrics import cer  # noqa: E402
from asr.numbers import VOTE_TEMPOS, case_alternatives, interpret  # noqa: E402
from asr.repetition import longest_run  # noqa: E402
from asr.settings import AsrSettings  # noqa: E402
from asr.whisper_engine import WhisperEngine  # noqa: E402
from bench.results_file import write_results  # noqa: E402

DATA = ROOT / "tests" / "data" / "speech_turns"
EVAL = ROOT / "tests" / "data" / "number_eval"
VOICES = ROOT / "tests" / "data" / "number_voices"
LENGTH = {"phone": 11, "code": 6, "id": 18}


def manifest(data: Path = DATA) -> list[dict]:
    return [json.loads(line) for line in (data / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]


def bad_inputs(seconds: float = 60.0, rate: int = 8000) -> dict[str, np.ndarray]:
    """PCM16 streams that hold no speech: line silence, DC, full-scale clipped noise, loud noise."""
    n = int(seconds * rate)
    rng = np.random.default_rng(5)
    t = np.arange(n) / rate
    return {
        "silence": rng.integers(-8, 9, n).astype(np.int16),
        "dc": np.full(n, 12000, dtype=np.int16),
        "clipping": np.clip(rng.normal(0, 30000, n) + 20000 * np.sin(2 * np.pi * 440 * t), -32768, 32767
                            ).astype(np.int16),
        "noise": rng.normal(0, 3000, n).astype(np.int16),
    }


def number_trial(engine: WhisperEngine, row: dict, expect: str | None, data: Path = DATA) -> tuple[str, float]:
    pcm, rate = read_wav(data / row["file"])
    kind = "case_number" if row["kind"] == "case" else "digits"
    t0 = time.perf_counter()
    if expect is None:  # a free decode, read as a number afterwards
        got = interpret(engine.transcribe(pcm, rate).text, kind)  # type: ignore[arg-type]
    else:
        got = engine.transcribe(pcm, rate, expect=kind, length=LENGTH.get(row["kind"])).text  # type: ignore[arg-type]
    return got, time.perf_counter() - t0


def right(row: dict, got: str) -> tuple[bool, bool]:
    """(exactly right, right up to a sound-alike case type the case store also tries)."""
    return got == row["expect"], bool(got) and row["expect"] in case_alternatives(got)


def number_figures(engine: WhisperEngine, data: Path, rows: list[dict], name: str,
                   modes: tuple[str, ...] = ("expect",)) -> dict:
    nums = [r for r in rows if r["kind"] in ("phone", "code", "id", "case")]
    res: dict[str, dict] = {}
    for mode in modes:
        kinds: dict[str, list[bool]] = {}
        by_sound: list[bool] = []
        misses, dts = [], []
        for r in nums:
            got, dt = number_trial(engine, r, "yes" if mode == "expect" else None, data)
            dts.append(dt)
            exact, sound = right(r, got)
            kinds.setdefault(r["kind"], []).append(exact)
            if r["kind"] == "case":
                by_sound.append(sound)
            if not exact:
                misses.append({"file": r["file"], "said": r["text"], "want": r["expect"], "got": got})
        res[mode] = {"exact": {k: f"{sum(v)}/{len(v)}" for k, v in kinds.items()},
                     "exact_rate": {k: round(sum(v) / len(v), 3) for k, v in kinds.items()},
                     "case_by_sound": f"{sum(by_sound)}/{len(by_sound)}",
                     "decode_s_mean": round(float(np.mean(dts)), 2), "decode_s_max": round(max(dts), 2),
                     "misses": misses}
        print(f"numbers, {name} ({mode}): {res[mode]['exact']}, case numbers by sound {res[mode]['case_by_sound']}; "
              f"decode {np.mean(dts):.2f} s mean, {max(dts):.2f} s max per number", flush=True)
    return res


def not_numbers(engine: WhisperEngine, rows: list[dict]) -> dict:
    """Sentences (no number in them) decoded as if a mobile number were asked for: how many read as digits."""
    sent = [r for r in rows if r["kind"] == "sentence"]
    got = [engine.transcribe(*read_wav(DATA / r["file"]), expect="digits", length=11).text for r in sent]
    res = {"sentences": len(sent), "some_digits": sum(bool(g) for g in got),
           "eleven_digits": sum(len(g) == 11 for g in got)}
    print(f"sentences asked as a mobile number: {res['some_digits']}/{len(sent)} read as digits, "
          f"{res['eleven_digits']}/{len(sent)} as 11 digits", flush=True)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--long", type=int, default=40, help="how many long utterances (default all 40)")
    ap.add_argument("--model", type=Path, default=ROOT / "var" / "models" / "whisper-base")
    ap.add_argument("--numbers-only", action="store_true", help="only the spoken numbers (both sets)")
    ap.add_argument("--vote", action="store_true", help="digit strings decoded at the tempos "
                                                       f"{VOTE_TEMPOS}, their n-best lists voting")
    ap.add_argument("--no-reader", action="store_true", help="digit strings by whisper's decoder, not the digit reader")
    args = ap.parse_args()
    rows = manifest()
    engine = WhisperEngine(args.model, AsrSettings(digit_reader=not args.no_reader))
    if args.vote:
        engine.digit_tempos = VOTE_TEMPOS
    out: dict = {"machine": f"{platform.node()} {platform.machine()}, 2 shared cores (other jobs running)",
                 "model": "whisper base int8, 10 s window, beam 5", "digit_tempos": list(engine.digit_tempos),
                 "digit_reader": engine.digit_reader is not None}
    if args.numbers_only:
        out["numbers"] = number_figures(engine, DATA, rows, "tuning set")
        out["numbers_heldout"] = number_figures(engine, EVAL, manifest(EVAL), "held-out set")
        out["numbers_voices"] = number_figures(engine, VOICES, manifest(VOICES), "held-out voices")
        out["not_numbers"] = not_numbers(engine, rows)
        vote = ("_vote" if args.vote else "") + ("_decoder" if args.no_reader else "")
        write_results(f"spoken_numbers{vote}", out)
        return 0

    sent = [r for r in rows if r["kind"] == "sentence"]
    hyp_sent = {r["file"]: engine.transcribe(*read_wav(DATA / r["file"])).text for r in sent}
    cer_short = cer([(r["text"], hyp_sent[r["file"]]) for r in sent])
    longs = [r for r in rows if r["kind"] == "long"][: args.long]
    per_long, runs, times = [], [], []
    for r in longs:
        t0 = time.perf_counter()
        tr = engine.transcribe(*read_wav(DATA / r["file"]))
        times.append(time.perf_counter() - t0)
        runs.append(longest_run(tr.text))
        per_long.append({"file": r["file"], "seconds": r["seconds"], "quiet": r["quiet"],
                         "cer": round(cer([(r["text"], tr.text)]), 3), "windows": tr.info.get("windows"),
                         "gain_db": tr.info.get("gain_db"), "loops_cut": tr.info.get("loops_cut"),
                         "decode_s": round(times[-1], 2), "text": tr.text})
    # the same sentences alone, weighted as they occur in the long utterances
    used = [i for r in longs for i in r["sentences"]]
    cer_short_same = cer([(sent[i]["text"], hyp_sent[sent[i]["file"]]) for i in used])
    cer_long = cer([(r["text"], p["text"]) for r, p in zip(longs, per_long, strict=True)])
    quiet = [(r["text"], p["text"]) for r, p in zip(longs, per_long, strict=True) if r["quiet"]]
    out["long"] = {"clips": len(longs), "seconds_total": round(sum(r["seconds"] for r in longs), 1),
                   "cer_sentences_alone": round(cer_short, 4), "cer_same_sentences_alone": round(cer_short_same, 4),
                   "cer_long": round(cer_long, 4), "ratio": round(cer_long / max(cer_short_same, 1e-9), 3),
                   "cer_quiet_long": round(cer(quiet), 4) if quiet else None,
                   "longest_char_run": max(runs), "decode_s_mean": round(float(np.mean(times)), 2),
                   "decode_s_max": round(max(times), 2), "per_clip": per_long}
    print(f"long: {len(longs)} clips, CER {cer_long:.1%} vs the same sentences alone {cer_short_same:.1%} "
          f"(ratio {cer_long / max(cer_short_same, 1e-9):.2f}; all 50 alone {cer_short:.1%}); quiet (-30 dB) "
          f"{out['long']['cer_quiet_long']}; longest run {max(runs)}; decode {np.mean(times):.2f} s mean, "
          f"{max(times):.2f} s max", flush=True)

    out["numbers"] = number_figures(engine, DATA, rows, "tuning set", modes=("expect", "free"))
    out["numbers_heldout"] = number_figures(engine, EVAL, manifest(EVAL), "held-out set", modes=("expect", "free"))
    bad = {}
    for name, pcm in bad_inputs().items():
        t0 = time.perf_counter()
        tr = engine.transcribe(pcm, 8000)
        bad[name] = {"text": tr.text, "decode_s": round(time.perf_counter() - t0, 2), "info": tr.info}
    out["bad_input_60s"] = bad
    print("bad input (60 s each): " + ", ".join(f"{k}: {v['text']!r} in {v['decode_s']} s" for k, v in bad.items()))
    write_results("speech_turns", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
