"""Compare designs of the order classifier's category regressions by 5-fold cross-validation on the TUNING set
only (``tests/data/orders_tune.jsonl``), repeated over fold seeds: category and second-level subcategory accuracy,
mean ± sd over the seeds. The held-out set is never read here.

Each design is the shipped ``classify_params.json`` with some weights replaced; the decision-time weights
(``prior_power``, ``path_weight``) are swept on the same fitted folds. ``--only-first N`` scores only the first N
tuning lines (so examples added later to the file train every fold but are never scored: a fair comparison with
the file as it was).

    nice -n 19 .venv/bin/python bench/classify_designs.py [--seeds 7 11 23] [--only-first 448]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from work_orders import taxonomy as tx  # noqa: E402
from work_orders.classify import Classifier, Params, VectorCache, load_examples, node_texts  # noqa: E402

TUNE = ROOT / "tests" / "data" / "orders_tune.jsonl"
OUT = ROOT / "bench" / "results" / "classify_designs.json"

#: build-time designs (each fitted per fold); decision-time sweeps below
DESIGNS: dict[str, dict] = {
    "shipped (sublinear tf-idf, C=100/100)": {},
    "class_weight=balanced": {"class_weight": "balanced"},
    "tf-idf without sublinear tf": {"ngram_weighting": "tfidf"},
    "n-gram counts": {"ngram_weighting": "counts"},
    "C words 10": {"lr_c_words": 10.0},
    "C words 1000": {"lr_c_words": 1000.0},
    "C vector 10": {"lr_c_vector": 10.0},
    "C vector 1000": {"lr_c_vector": 1000.0},
    # the regressions over the e5 vector see the text's clauses (split at punctuation) pooled, not one vector
    "clause vectors: mean": {"pool": "mean"},
    "clause vectors: max": {"pool": "max"},
    "clause vectors: whole + mean": {"pool": "whole+mean"},
}
CLAUSE = re.compile(r"[，。！？；,.!?;\s]+")


def pooled_classifier(pool: str, embed: VectorCache) -> type[Classifier]:
    """A Classifier whose vector regressions see ``pool`` of the clause vectors (an experiment: the shipped
    classifier embeds each text once)."""

    def features(texts: list[str], whole: np.ndarray) -> np.ndarray:
        out = []
        for t, w in zip(texts, whole, strict=True):
            parts = [c for c in CLAUSE.split(t) if c]
            vs = embed(parts) if len(parts) > 1 else w[None, :]
            m = vs.mean(0) if pool != "max" else vs.max(0)
            m = m / (np.linalg.norm(m) or 1.0)
            out.append(np.concatenate([w, m]) / np.sqrt(2) if pool == "whole+mean" else m)
        return np.asarray(out, np.float32)

    class Pooled(Classifier):
        def _fit_category(self) -> None:
            whole = self.vectors
            self.vectors = features([e.text for e in self.examples], whole)
            try:
                super()._fit_category()
            finally:
                self.vectors = whole

        def _probabilities(self, name: str, text: str, v: np.ndarray) -> dict[str, float]:
            return super()._probabilities(name, text, features([text], v[None, :])[0])

    return Pooled
PRIOR_POWERS = (0.0, 0.25, 0.5, 0.75, 1.0)
PATH_WEIGHTS = (0.0, 0.5, 1.0, 2.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[7, 11, 23])
    ap.add_argument("--only-first", type=int, default=0, help="score only the first N tuning lines")
    ap.add_argument("--designs", nargs="*", help="names (substrings) of designs to run")
    ap.add_argument("--extra", type=Path, help="more labelled examples that train every fold (never scored)")
    args = ap.parse_args()
    t0 = time.time()
    taxonomy = tx.load()
    examples = load_examples(TUNE)
    n_scored = args.only_first or len(examples)
    examples = examples[:n_scored] + examples[n_scored:] + (load_examples(args.extra) if args.extra else [])
    embed = VectorCache(remember=True)  # the bundled vectors; new texts are embedded
    vectors = embed([e.text for e in examples])
    embed(node_texts(taxonomy))
    print(f"{len(examples)} tuning examples ({n_scored} scored), vectors in {time.time() - t0:.0f} s", flush=True)
    base = Params.load()
    scored = examples[:n_scored]
    rows = []
    for name, over in DESIGNS.items():
        if args.designs and not any(d in name for d in args.designs):
            continue
        per: dict[tuple[float, float], list[tuple[float, float]]] = {}
        for seed in args.seeds:
            hits: dict[tuple[float, float], list[int]] = {}
            folds = StratifiedKFold(5, shuffle=True, random_state=seed).split(scored, [e.category for e in scored])
            for train, test in folds:
                # later-added examples (beyond n_scored) train every fold
                idx = list(train) + list(range(n_scored, len(examples)))
                weights = {k: x for k, x in over.items() if k != "pool"}
                cls = pooled_classifier(over["pool"], embed) if "pool" in over else Classifier
                clf = cls(taxonomy, [examples[i] for i in idx], replace(base, **weights), embed=embed,
                          vectors=vectors[idx])
                for i in test:
                    e, v = examples[i], vectors[i]
                    prob = clf.category_probabilities(e.text, v)
                    clf.category_probabilities = lambda _t, _v, prob=prob: prob  # noqa: B023 - swept below
                    for a in PRIOR_POWERS:
                        for pw in PATH_WEIGHTS:
                            clf.params = replace(clf.params, prior_power=a, path_weight=pw)
                            cat, path, *_ = clf.decide(e.text, v)
                            h = hits.setdefault((a, pw), [0, 0])
                            h[0] += cat == e.category
                            h[1] += cat == e.category and e.path[:1] == tuple(path.split("/")[:1])
                    del clf.category_probabilities
            for k, (c, s) in hits.items():
                per.setdefault(k, []).append((c / n_scored, s / n_scored))
        for (a, pw), accs in per.items():
            cats, subs = [x[0] for x in accs], [x[1] for x in accs]
            rows.append({"design": name, "prior_power": a, "path_weight": pw,
                         "category": statistics.mean(cats), "category_sd": statistics.pstdev(cats),
                         "subcategory": statistics.mean(subs), "subcategory_sd": statistics.pstdev(subs)})
        for r in [r for r in rows if r["design"] == name]:
            if r["path_weight"] == base.path_weight or r is max(
                    (x for x in rows if x["design"] == name), key=lambda x: x["category"] + x["subcategory"]):
                print(f"{name:40s} prior^{r['prior_power']:<4} pw={r['path_weight']:<3} "
                      f"category {r['category']:.4f} ± {r['category_sd']:.4f}  "
                      f"subcategory {r['subcategory']:.4f} ± {r['subcategory_sd']:.4f}", flush=True)
        print(f"  ({time.time() - t0:.0f} s)", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"seeds": args.seeds, "extra": str(args.extra or ""), "scored": n_scored,
                               "examples": len(examples), "rows": rows},
                              ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
