"""Fit the order classifier's weights by 5-fold cross-validation on the TUNING set only
(``tests/data/orders_tune.jsonl``); the held-out set is never read here (``bench/classify_eval.py`` reports it).

Writes ``work_orders/data/classify_params.json`` (the chosen weights, the confidence calibration and the CV
figures), ``work_orders/data/order_examples.jsonl`` (the tuning set: the classifier's labelled examples) and
``work_orders/data/classify_vectors.npz`` (their vectors and the node names', float16, so a hub does not embed
them at start) and ``work_orders/data/classify_fitted.npz`` (the regressions fitted on all of them, so a hub
does not fit them at start).

    nice .venv/bin/python bench/classify_fit.py
"""

from __future__ import annotations

import itertools
import json
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from work_orders import embedding  # noqa: E402
from work_orders import taxonomy as tx  # noqa: E402
from work_orders.classify import (  # noqa: E402
    EXAMPLES_PATH,
    FITTED_PATH,
    PARAMS_PATH,
    VECTORS_PATH,
    Classifier,
    Example,
    Params,
    VectorCache,
    load_examples,
    node_texts,
)

TUNE = ROOT / "tests" / "data" / "orders_tune.jsonl"
FOLDS = 5
CACHE = ROOT / "var" / "cache" / "classify_fit_vectors.npz"


#: the weights fixed when a model is fitted
BUILD = ("lr_c_vector", "lr_c_words", "cue_scale", "vector_weight", "class_weight", "ngram_weighting")


class Folds:
    """The CV folds' classifiers, fitted once per setting of the regressions (:data:`BUILD`); the other weights
    act only when deciding, so they are swapped in place, and each text's probabilities are kept per fold."""

    def __init__(self, examples: list[Example], embed: VectorCache, taxonomy: tx.Taxonomy, vectors: np.ndarray):
        self.examples, self.embed, self.taxonomy, self.vectors = examples, embed, taxonomy, vectors
        labels = [e.category for e in examples]
        self.splits = list(StratifiedKFold(FOLDS, shuffle=True, random_state=7).split(examples, labels))
        self.built: dict[tuple, list[Classifier]] = {}

    def classifiers(self, params: Params) -> list[Classifier]:
        key = tuple(getattr(params, k) for k in BUILD)
        if key not in self.built:
            out = []
            for train, _ in self.splits:
                clf = Classifier(self.taxonomy, [self.examples[i] for i in train], params,
                                 embed=self.embed, vectors=self.vectors[train])
                memo: dict[str, dict[str, float]] = {}
                plain = clf.category_probabilities

                def cached(text, v, memo=memo, plain=plain):
                    if text not in memo:
                        memo[text] = plain(text, v)
                    return memo[text]

                clf.category_probabilities = cached
                out.append(clf)
            self.built[key] = out
        return self.built[key]

    def predictions(self, params: Params) -> list[tuple[Example, tuple, list[str]]]:
        """(example, decide() output, predicted tags) for every example, by a model fitted without it."""
        out: list = [None] * len(self.examples)
        for clf, (_, test) in zip(self.classifiers(params), self.splits, strict=True):
            clf.params = params
            for i in test:
                e, v = self.examples[i], self.vectors[i]
                d = clf.decide(e.text, v)
                out[i] = (e, d, clf._tags(e.text, v, d[0], d[1]))
        return out


def scores(preds) -> dict[str, float]:
    n = len(preds)
    cat = sum(e.category == d[0] for e, d, _ in preds) / n
    sub = sum(e.category == d[0] and e.path[:1] == tuple(d[1].split("/")[:1]) for e, d, _ in preds) / n
    full = sum(e.category == d[0] and "/".join(e.path) == d[1] for e, d, _ in preds) / n
    tp = sum(len(set(e.tags) & set(t)) for e, _, t in preds)
    pp = sum(len(t) for _, _, t in preds)
    gold = sum(len(e.tags) for e, _, _ in preds)
    prec, rec = tp / max(pp, 1), tp / max(gold, 1)
    return {"category": cat, "subcategory": sub, "path": full, "tag_precision": prec, "tag_recall": rec,
            "tag_f1": 2 * prec * rec / max(prec + rec, 1e-9)}


def main() -> None:
    t0 = time.time()
    taxonomy = tx.load()
    examples = load_examples(TUNE)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    embed = VectorCache(path=CACHE, remember=True)  # texts embedded by an earlier run
    vectors = embed([e.text for e in examples])
    embed(node_texts(taxonomy))
    embed.save(CACHE, [e.text for e in examples] + node_texts(taxonomy))
    print(f"{len(examples)} tuning examples embedded in {time.time() - t0:.1f} s", flush=True)
    # class-weight balancing of the regressions: chosen by bench/classify_designs.py (5-fold CV on the tuning set,
    # seeds 7/11/23) over prior correction, tf-idf without sublinear tf, counts, C 10/1000 and clause vectors
    best = Params(class_weight="balanced")

    folds = Folds(examples, embed, taxonomy, vectors)

    def run(p: Params) -> dict[str, float]:
        return scores(folds.predictions(p))

    # 1. the regressions (category and second-level subcategory)
    results = []
    # (a wider search, lr_c_words 100/1000 x vector_weight 0.3-0.7, was run as a scratch experiment on the same
    # folds: 100 and 0.5 were best; each fit costs seconds on the 2-core machine, so only the cue weight is searched)
    for cw, cs, vw in itertools.product([100.0], [0.3, 0.6], [0.5]):
        s = run(replace(best, lr_c_words=cw, cue_scale=cs, vector_weight=vw))
        results.append((s["category"] + s["subcategory"], cw, cs, vw, s))
    _, cw, cs, vw, s = max(results, key=lambda r: r[0])
    best = replace(best, lr_c_words=cw, cue_scale=cs, vector_weight=vw)
    print(f"regressions: lr_c_words={cw} cue_scale={cs} vector_weight={vw}: {s}", flush=True)
    # 2. paths: example score depth, the weight of the node's name, and of the path scores beside the regressions
    results = []
    for k, w, pw, pt in itertools.product([1, 2, 3], [0.0, 0.5, 1.0], [0.0, 0.25, 0.5, 1.0], [0.03, 0.06]):
        s = run(replace(best, knn_top=k, name_weight=w, path_weight=pw, path_temperature=pt))
        results.append((s["category"] + s["subcategory"] + 0.5 * s["path"], k, w, pw, pt, s))
    _, k, w, pw, pt, s = max(results, key=lambda r: r[0])
    best = replace(best, knn_top=k, name_weight=w, path_weight=pw, path_temperature=pt)
    print(f"paths: knn_top={k} name_weight={w} path_weight={pw} path_temperature={pt}: {s}", flush=True)
    # 3. tags
    results = []
    for tk, tt, th, tb in itertools.product([5, 8, 12], [0.03, 0.08], [0.3, 0.4, 0.5], [0.2, 0.4]):
        s = run(replace(best, tag_k=tk, tag_temperature=tt, tag_threshold=th, tag_word_bonus=tb))
        results.append((s["tag_f1"], tk, tt, th, tb, s))
    _, tk, tt, th, tb, s = max(results, key=lambda r: r[0])
    best = replace(best, tag_k=tk, tag_temperature=tt, tag_threshold=th, tag_word_bonus=tb)
    print(f"tags: k={tk} temperature={tt} threshold={th} word bonus={tb}: {s}", flush=True)
    # 4. confidence: P(category and second-level subcategory right), fitted on the out-of-fold predictions
    preds = folds.predictions(best)
    x = np.array([[d[2], d[3], d[4]] for _, d, _ in preds])
    y = np.array([e.category == d[0] and e.path[:1] == tuple(d[1].split("/")[:1]) for e, d, _ in preds])
    cal = LogisticRegression(C=10.0).fit(x, y)
    best = replace(best, calibration=[float(cal.intercept_[0]), *map(float, cal.coef_[0])])
    conf = cal.predict_proba(x)[:, 1]
    buckets = []
    for lo, hi in ((0, .5), (.5, .7), (.7, .85), (.85, .95), (.95, 1.01)):
        m = (conf >= lo) & (conf < hi)
        if m.any():
            buckets.append({"confidence": [lo, min(hi, 1.0)], "n": int(m.sum()), "mean_confidence":
                            round(float(conf[m].mean()), 3), "accuracy": round(float(y[m].mean()), 3)})
    final = scores(preds)
    print("cv:", {k: round(v, 3) for k, v in final.items()})
    print("calibration buckets:", buckets)
    PARAMS_PATH.write_text(json.dumps({
        "params": asdict(best), "fitted_on": "tests/data/orders_tune.jsonl", "examples": len(examples),
        "folds": FOLDS, "cv": {k: round(v, 4) for k, v in final.items()}, "cv_calibration": buckets,
        "model": embedding.MODEL_NAME}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    shutil.copyfile(TUNE, EXAMPLES_PATH)
    Classifier(taxonomy, examples, best, embed=embed, vectors=vectors).save_fitted(FITTED_PATH)
    embed.save(VECTORS_PATH, [e.text for e in examples] + node_texts(taxonomy))
    print(f"wrote {PARAMS_PATH.relative_to(ROOT)}, {EXAMPLES_PATH.relative_to(ROOT)}, {VECTORS_PATH.name} and "
          f"{FITTED_PATH.name} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
