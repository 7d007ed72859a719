#!/usr/bin/env python3
"""Fit the spoken-digit reader (asr/digit_reader.py) on whisper-base encoder frames, with CTC.

A small network over the frames (a projection to ``--width`` channels, two 1-D convolutions of 5 frames,
a softmax over blank and the ten digits) learns to spell the digits; CTC needs no alignment, and a blank
between two frames of one digit keeps 七七七 as three digits, which whisper's decoder collapses. It is fitted
with TensorFlow (in the TTS venv, the one place it is installed) and saved as plain arrays that
asr/digit_reader.py runs with numpy. The rendered training clips are split 90/10 (the tenth picks the
epoch); the tuning set (tests/data/speech_turns/num) is printed each epoch; the held-out set is never
read here.

    var/tts-venv/bin/python scripts/fit_digit_reader.py var/digit_train/feats.npz \
        --tune var/digit_tune.npz --out asr/data/digit_reader.npz
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

VERSION = 1


def load(path: Path) -> tuple[list[np.ndarray], list[str]]:
    d = np.load(path)
    cuts = np.cumsum(d["lengths"])[:-1]
    return np.split(d["frames"].astype(np.float32), cuts), [str(x) for x in d["digits"]]


def batch(frames: list[np.ndarray], digits: list[str]):
    t = max(len(f) for f in frames)
    x = np.zeros((len(frames), t, frames[0].shape[1]), dtype=np.float32)
    for k, f in enumerate(frames):
        x[k, :len(f)] = f
    n = max(len(d) for d in digits)
    y = np.zeros((len(digits), n), dtype=np.int32)
    for k, d in enumerate(digits):
        y[k, :len(d)] = [int(c) + 1 for c in d]
    return x, np.array([len(f) for f in frames], np.int32), y, np.array([len(d) for d in digits], np.int32)


def greedy(probs: np.ndarray) -> str:
    # asr.digit_reader._greedy's reading; the TTS venv (TensorFlow) cannot import asr (no pydantic there)
    best = probs.argmax(-1)
    out, prev = [], 0
    for b in best:
        if b != prev and b != 0:
            out.append(str(b - 1))
        prev = b
    return "".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("train", type=Path, nargs="+", help="frames files of scripts/digit_features.py")
    ap.add_argument("--tune", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-3)
    args = ap.parse_args()
    import tensorflow as tf

    tf.random.set_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    frames, digits = [], []
    for path in args.train:
        f, dg = load(path)
        frames += f
        digits += dg
    order = rng.permutation(len(frames))
    n_val = len(frames) // 10
    val, fit = order[:n_val], order[n_val:]
    tune = load(args.tune) if args.tune else None
    d_model, w = frames[0].shape[1], args.width
    # the encoder's values are standardized per dimension (its raw scale kept CTC on blanks for epochs)
    stacked = np.concatenate([frames[i] for i in fit])
    mean, std = stacked.mean(axis=0), stacked.std(axis=0) + 1e-3
    del stacked
    frames = [(f - mean) / std for f in frames]
    if tune:
        tune = ([(f - mean) / std for f in tune[0]], tune[1])

    inp = tf.keras.Input((None, d_model))
    h = tf.keras.layers.Dense(w, activation="relu")(inp)
    h = tf.keras.layers.Dropout(args.dropout)(h)
    h = tf.keras.layers.Conv1D(w, 5, padding="same", activation="relu")(h)
    h = tf.keras.layers.Dropout(args.dropout)(h)
    h = tf.keras.layers.Conv1D(w, 5, padding="same", activation="relu")(h)
    h = tf.keras.layers.Dropout(args.dropout)(h)
    out = tf.keras.layers.Dense(11)(h)
    model = tf.keras.Model(inp, out)
    opt = tf.keras.optimizers.Adam(args.lr)

    @tf.function(reduce_retracing=True)
    def step(x, xl, y, yl):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_mean(tf.nn.ctc_loss(y, logits, yl, xl, logits_time_major=False, blank_index=0))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables,
                                strict=True))
        return loss

    def accuracy(fr: list[np.ndarray], dg: list[str]) -> float:
        right = 0
        for k in range(0, len(fr), 64):
            x, xl, _, _ = batch(fr[k:k + 64], dg[k:k + 64])
            p = tf.nn.softmax(model(x, training=False)).numpy()
            right += sum(greedy(p[j, :xl[j]]) == dg[k + j] for j in range(len(xl)))
        return right / len(fr)

    best, history = -1.0, []
    for epoch in range(args.epochs):
        rng.shuffle(fit)
        losses = []
        for k in range(0, len(fit), 32):
            idx = fit[k:k + 32]
            x, xl, y, yl = batch([frames[i] for i in idx], [digits[i] for i in idx])
            losses.append(float(step(x, xl, y, yl)))
        acc = accuracy([frames[i] for i in val], [digits[i] for i in val])
        tacc = accuracy(*tune) if tune else float("nan")
        history.append({"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4), "val": round(acc, 4),
                        "tune": round(tacc, 4)})
        print(json.dumps(history[-1]), flush=True)
        if acc > best:  # saved at once: the fit can be stopped at any epoch
            best = acc
            (dense1, b1, conv1, c1, conv2, c2, dense2, b2) = [v.numpy() for v in model.weights]
            args.out.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(args.out, version=VERSION, mean=mean.astype(np.float32), std=std.astype(np.float32),
                                proj_w=dense1.astype(np.float16), proj_b=b1, conv1_w=conv1.astype(np.float16),
                                conv1_b=c1, conv2_w=conv2.astype(np.float16), conv2_b=c2,
                                out_w=dense2.astype(np.float16), out_b=b2, history=json.dumps(history),
                                clips=len(fit), epoch=epoch + 1)
            print(f"saved {args.out} (validation exact {best:.3f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
