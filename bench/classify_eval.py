"""The order classifier on the HELD-OUT set (``tests/data/orders_heldout.jsonl``, never tuned on): top-level
category accuracy (goal >= 0.93), second-level subcategory accuracy (goal >= 0.80), full-path accuracy, tag
precision/recall, confidence calibration, a category confusion table and the most frequent subcategory errors.

Uses the bundled classifier exactly as the hub does (``work_orders/data``: examples, weights, vectors, fitted by
``bench/classify_fit.py`` on the tuning set). Prints a report and writes ``bench/results/classify_eval.json``.

    nice .venv/bin/python bench/classify_eval.py [--data FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from work_orders import embedding  # noqa: E402
from work_orders import taxonomy as tx  # noqa: E402
from work_orders.classify import for_taxonomy, load_examples  # noqa: E402
from work_orders.settings import CATEGORIES, CATEGORY_NAMES  # noqa: E402

HELDOUT = ROOT / "tests" / "data" / "orders_heldout.jsonl"
OUT = ROOT / "bench" / "results" / "classify_eval.json"
GOALS = {"category": 0.93, "subcategory": 0.80}


def evaluate(data: Path) -> dict:
    taxonomy = tx.load()
    clf = for_taxonomy(taxonomy)
    examples = load_examples(data)
    t0 = time.perf_counter()
    got = clf.classify_many([e.text for e in examples])
    seconds = time.perf_counter() - t0
    n = len(examples)
    confusion = {g: dict.fromkeys(CATEGORIES, 0) for g in CATEGORIES}
    sub_errors: Counter = Counter()
    cat_ok = sub_ok = path_ok = tp = predicted = gold = 0
    buckets: dict[str, list[int]] = {}
    for e, s in zip(examples, got, strict=True):
        confusion[e.category][s.category] += 1
        c = e.category == s.category
        sub = c and tuple(s.path[:1]) == e.path[:1]
        cat_ok += c
        sub_ok += sub
        path_ok += c and tuple(s.path) == e.path
        if c and not sub:
            sub_errors[f"{CATEGORY_NAMES[e.category]}: {'/'.join(e.path[:1])} → {'/'.join(s.path[:1])}"] += 1
        tp += len(set(s.tags) & set(e.tags))
        predicted += len(s.tags)
        gold += len(e.tags)
        b = next(f"{lo:.2f}-{hi:.2f}" for lo, hi in ((0, .5), (.5, .7), (.7, .85), (.85, .95), (.95, 1.01))
                 if lo <= s.confidence < hi)
        buckets.setdefault(b, []).append(int(sub))
    prec, rec = tp / max(predicted, 1), tp / max(gold, 1)
    return {
        "data": str(data.relative_to(ROOT)) if data.is_relative_to(ROOT) else str(data), "texts": n,
        "model": embedding.MODEL_NAME,
        "category_accuracy": round(cat_ok / n, 4), "subcategory_accuracy": round(sub_ok / n, 4),
        "path_accuracy": round(path_ok / n, 4), "tag_precision": round(prec, 4), "tag_recall": round(rec, 4),
        "goals": GOALS,
        "confusion": confusion,
        "subcategory_errors": dict(sub_errors.most_common(15)),
        "calibration": {b: {"n": len(v), "right": round(sum(v) / len(v), 3)} for b, v in sorted(buckets.items())},
        "ms_per_text": round(seconds * 1000 / n, 1),
        "note": "timings on a shared, loaded 2-core machine",
    }


def report(r: dict) -> None:
    print(f"held-out: {r['texts']} texts ({r['data']}), {r['model']}")
    for key, goal in (("category_accuracy", GOALS["category"]), ("subcategory_accuracy", GOALS["subcategory"])):
        print(f"  {key:22s} {r[key]:.3f}  (goal >= {goal:.2f}: {'met' if r[key] >= goal else 'NOT met'})")
    print(f"  {'path_accuracy':22s} {r['path_accuracy']:.3f}  (full path, third level)")
    print(f"  tags: precision {r['tag_precision']:.3f}, recall {r['tag_recall']:.3f}")
    print(f"  {r['ms_per_text']} ms a text ({r['note']})")
    print("\nconfusion (rows: labelled, columns: suggested)")
    heads = [CATEGORY_NAMES[c] for c in CATEGORIES]
    print("          " + "".join(f"{h:>7s}" for h in heads))
    for g in CATEGORIES:
        print(f"{CATEGORY_NAMES[g]:6s}" + "".join(f"{r['confusion'][g][c]:>9d}" for c in CATEGORIES))
    print("\nmost frequent subcategory errors (category right):")
    for k, v in r["subcategory_errors"].items():
        print(f"  {v:3d}  {k}")
    print("\nconfidence vs. share with category and subcategory right:")
    for b, v in r["calibration"].items():
        print(f"  {b}: n={v['n']:3d} right={v['right']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=HELDOUT)
    args = ap.parse_args()
    r = evaluate(args.data.resolve())
    report(r)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(r, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
