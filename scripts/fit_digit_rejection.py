#!/usr/bin/env python3
"""Fit the digit reader's "not a number" threshold (asr.digit_reader.MAX_SPAN_ENTROPY) and measure it.

The feature is the mean entropy of the reader's frames between the first and the last digit
(``asr.digit_reader.span_entropy``). A logistic regression on it separates the 50 tuning sentences from the
26 tuning numbers of tests/data/speech_turns (leave-one-out accuracy printed); its decision boundary is
the threshold. Then, never fitted on: the caller questions of tests/data/speech (should be refused) and
the numbers of tests/data/number_eval and tests/data/number_voices (should be kept). Writes
bench/results/digit_rejection.json.

    .venv/bin/python scripts/fit_digit_rejection.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import LeaveOneOut, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asr.audio import read_wav  # noqa: E402
from asr.digit_reader import MAX_SPAN_ENTROPY, span_entropy  # noqa: E402
from asr.settings import AsrSettings  # noqa: E402
from asr.whisper_engine import WhisperEngine  # noqa: E402

NUMBER_KINDS = ("phone", "code", "id")
DATA = ROOT / "tests" / "data"


def manifest(data: Path) -> list[dict]:
    return [json.loads(line) for line in (data / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]


def entropies(engine: WhisperEngine, paths: list[Path]) -> np.ndarray:
    assert engine.digit_reader is not None
    return np.array([span_entropy(engine.digit_reader.log_probs(engine.digit_frames(*read_wav(p)))) for p in paths])


def main() -> int:
    engine = WhisperEngine(ROOT / "var" / "models" / "whisper-base", AsrSettings())
    tune = manifest(DATA / "speech_turns")
    sentences = [DATA / "speech_turns" / r["file"] for r in tune if r["kind"] == "sentence"]
    numbers = [DATA / "speech_turns" / r["file"] for r in tune if r["kind"] in NUMBER_KINDS]
    x = np.concatenate([entropies(engine, sentences), entropies(engine, numbers)])[:, None]
    y = np.array([0] * len(sentences) + [1] * len(numbers))
    model = make_pipeline(StandardScaler(), LogisticRegression())  # scaled: entropies are ~0.01-0.2
    loo = (cross_val_predict(model, x, y, cv=LeaveOneOut()) == y).mean()
    model.fit(x, y)
    scale, fit = model[0], model[1]
    threshold = float(scale.mean_[0] - fit.intercept_[0] / fit.coef_[0][0] * scale.scale_[0])
    out: dict = {"fitted_threshold": round(threshold, 4), "shipped_threshold": MAX_SPAN_ENTROPY,
                 "tuning": {"sentences": len(sentences), "numbers": len(numbers), "loo_accuracy": round(loo, 3)}}
    print(f"tuning: {len(sentences)} sentences, {len(numbers)} numbers; leave-one-out accuracy {loo:.3f}; "
          f"threshold {threshold:.4f} (shipped {MAX_SPAN_ENTROPY})")
    questions = sorted((DATA / "speech").glob("q*.wav")) + sorted((DATA / "speech" / "dialogue").glob("*.wav"))
    held = {"questions refused": (questions, False)}
    for name in ("number_eval", "number_voices"):
        rows = manifest(DATA / name)
        held[f"{name} kept"] = ([DATA / name / r["file"] for r in rows if r["kind"] in NUMBER_KINDS], True)
    for name, (paths, keep) in held.items():
        e = entropies(engine, paths)
        ok = int(((e <= MAX_SPAN_ENTROPY) == keep).sum())
        out[name] = f"{ok}/{len(paths)}"
        print(f"held-out, {name}: {ok}/{len(paths)}")
    path = ROOT / "bench" / "results" / "digit_rejection.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
