#!/usr/bin/env python3
"""Fit the subspace of the matcher's first pass (knowledge_base/first_pass.py) and check it.

The basis: the top ``--dim`` principal directions (uncentred: it approximates dot products) of e5 vectors of the
default KB's texts and answers (passages) and the tuning questions (queries: tests/data/kb_eval*.jsonl,
nav_tune.jsonl; never the held-out sets), each set weighted equally. Written to
knowledge_base/data/first_pass_basis.npy (float32, 384 x dim).

The check: a knowledge base of 10,000 entries as bench/kb_speed.py builds it (the default KB plus generated
entries), every tuning question matched with the first pass and exactly: how many decisions, best entries and
probabilities agree, and the time of the text cosines both ways. Prints the figures; writes
bench/results/kb_first_pass.json.

    .venv/bin/python bench/kb_first_pass_fit.py [--dim 96] [--check-only]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))

from kb_speed import synthesize, with_vectors  # noqa: E402
from kb_tuning import DATA, read_jsonl  # noqa: E402

from knowledge_base import first_pass  # noqa: E402
from knowledge_base.embedding import get_embedder, stored_texts  # noqa: E402
from knowledge_base.matcher import Matcher, default_kb_path, load_entries  # noqa: E402
from knowledge_base.settings import MatcherSettings  # noqa: E402
from knowledge_base.title import make_title  # noqa: E402

TUNING = ("kb_eval.jsonl", "kb_eval_more.jsonl", "nav_tune.jsonl")


def tuning_questions() -> list[str]:
    return [r["text"] for name in TUNING if (DATA / name).is_file() for r in read_jsonl(DATA / name)]


def fit(dim: int) -> np.ndarray:
    emb = get_embedder()
    base = load_entries(default_kb_path())
    passages = emb.passages([t for e in base for t in stored_texts(e.title or make_title(e.question), e.question,
                                                                    e.variants, e.answer)])
    queries = np.stack([emb.query(q) for q in tuning_questions()])
    moment = sum(m.T @ m / len(m) for m in (passages, queries))
    _, vecs = np.linalg.eigh(moment)
    print(f"basis from {len(passages)} passages and {len(queries)} tuning questions")
    return np.ascontiguousarray(vecs[:, ::-1][:, :dim].astype(np.float32))


def check(basis: np.ndarray, size: int) -> dict:
    emb = get_embedder()
    base = load_entries(default_kb_path())
    texts = [t for e in base for t in stored_texts(e.title or make_title(e.question), e.question, e.variants,
                                                   e.answer)]
    real = dict(zip(texts, emb.passages(texts), strict=True))
    entries = with_vectors(synthesize(base, size), real)
    first_pass.load_basis.cache_clear()
    exact = Matcher.build(entries, MatcherSettings(first_pass_min_texts=10**9))
    fast = Matcher.build(entries, MatcherSettings(first_pass_min_texts=0))  # the basis just written
    same_decision = same_best = 0
    dp: list[float] = []
    qs = tuning_questions()
    for q in qs:
        a, b = exact.match(q), fast.match(q)
        same_decision += (a.decision, a.faq_id, tuple(a.offered)) == (b.decision, b.faq_id, tuple(b.offered))
        same_best += (a.candidates[:1] and b.candidates[:1] and a.candidates[0].faq_id == b.candidates[0].faq_id) \
            or (not a.candidates and not b.candidates)
        if a.probability is not None and b.probability is not None:
            dp.append(abs(a.probability - b.probability))
    vec_e, vec_f = exact._vec, fast._vec
    q = emb.query("诉讼费什么时候退")
    timing = {}
    for name, fp in (("exact", None), ("first_pass", vec_f.first_pass)):
        first_pass.similarities(vec_e.texts, fp, q)
        ts = []
        for _ in range(200):
            t = time.perf_counter()
            first_pass.similarities(vec_e.texts, fp, q)
            ts.append(time.perf_counter() - t)
        ts.sort()
        timing[name] = {"p50_ms": round(ts[100] * 1000, 3), "p95_ms": round(ts[190] * 1000, 3)}
    return {"entries": size, "texts": int(vec_e.texts.shape[0]), "questions": len(qs),
            "same_decision": round(same_decision / len(qs), 4), "same_best": round(same_best / len(qs), 4),
            "probability_abs_diff_max": round(max(dp), 4) if dp else None,
            "probability_abs_diff_mean": round(float(np.mean(dp)), 5) if dp else None, "text_cosines": timing}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=96)
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--check-only", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kb_first_pass.json")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    if args.check_only:
        basis = first_pass.load_basis()
        assert basis is not None, f"{first_pass.BASIS_PATH} is missing: run without --check-only"
    else:
        basis = fit(args.dim)
        np.save(first_pass.BASIS_PATH, basis)
        print(f"wrote {first_pass.BASIS_PATH.relative_to(ROOT)} ({basis.shape[0]} x {basis.shape[1]})")
    r = check(basis, args.size)
    print(json.dumps(r, ensure_ascii=False, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"dim": int(basis.shape[1]), "keep": first_pass.KEEP, **r}, indent=1) + "\n")


if __name__ == "__main__":
    main()
