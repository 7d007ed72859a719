"""FAQ matcher speed: one decision (query embedding included) at 80, 1,000 and 10,000 entries on one core
(p50/p95/p99), build time, the time to re-embed a KB after an import, and memory (RSS deltas).

The semantic matcher (default): every query is embedded (e5, one core) and compared with a normalised matrix of
all entry texts (numpy matmul), besides the lexical retrieval. Entries of the default KB carry their real
vectors; the generated ones carry random unit vectors as stored embeddings (the arithmetic is the same, and
embedding 60,000 generated texts would take a quarter of an hour). Re-embedding is measured for real on the
default KB and on 1,000 generated entries (``--reembed``), and given per text.

The larger knowledge bases are the default one plus generated distinct entries whose questions and
variants are random sequences of words cut from the default texts (so character and sound pairs are
distributed like real FAQ text). Queries are the utterances of tests/data/kb_eval.jsonl, each time with one
character replaced and one inserted at random (as a recognizer's errors would), so every query is new
and no per-text cache of the matcher flatters the figures.
Build time is given cold (texts never seen by this process: normalisation, pinyin and features
computed) and warm (rebuild after editing one entry: per-text work is cached, as in a running hub).
Writes bench/results/kb_speed.json.

    .venv/bin/python bench/kb_speed.py [--sizes 80 1000 10000] [--queries 300] [--reembed 80 1000] [--lexical]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from knowledge_base.embedding import MODEL_NAME, Embedder, get_embedder, pack, stored_texts, vectors_tag  # noqa: E402
from knowledge_base.entry import FaqEntry  # noqa: E402
from knowledge_base.matcher import Matcher, default_kb_path, load_entries  # noqa: E402
from knowledge_base.settings import MatcherSettings  # noqa: E402
from knowledge_base.title import make_title  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Stored:
    """An entry as the store hands it to the matcher: with its vectors and the model's tag."""

    def __init__(self, e: FaqEntry, vectors: np.ndarray):
        self.id, self.question, self.variants, self.keywords, self.title, self.answer = (
            e.id, e.question, e.variants, e.keywords, e.title, e.answer)
        self.embedding, self.embedding_model = pack(vectors), vectors_tag(MODEL_NAME)


def with_vectors(entries: list[FaqEntry], real: dict[str, np.ndarray], seed: int = 5) -> list[Stored]:
    rng = np.random.default_rng(seed)
    out = []
    for e in entries:
        texts = stored_texts(e.title or make_title(e.question), e.question, e.variants, e.answer)
        if all(t in real for t in texts):
            vec = np.stack([real[t] for t in texts])
        else:
            vec = rng.standard_normal((len(texts), 384)).astype(np.float32)
            vec /= np.linalg.norm(vec, axis=1, keepdims=True)
        out.append(Stored(e, vec))
    return out

EVAL_PATH = ROOT / "tests" / "data" / "kb_eval.jsonl"


def synthesize(base: list[FaqEntry], total: int, seed: int = 12368) -> list[FaqEntry]:
    """``base`` plus generated distinct entries up to ``total``."""
    rng = random.Random(seed)
    words = sorted({t[i:i + n] for e in base for t in (e.question, *e.variants)
                    for n in (2, 3) for i in range(len(t) - n + 1)})
    out = list(base)
    seen = {e.question for e in base}
    i = 0
    while len(out) < total:
        i += 1
        core = rng.sample(words, 3)
        q = "".join(core + rng.sample(words, 2))
        if q in seen:
            continue
        seen.add(q)
        variants = ["".join(rng.sample(core, 2) + rng.sample(words, rng.randint(1, 3)))
                    for _ in range(rng.randint(3, 6))]
        out.append(FaqEntry(id=f"G{i:05d}", category="consult", question=q[:200], variants=variants,
                            answer="生成的测试条目。", keywords=[core[0]]))
    return out[:total]


def unique_queries(texts: list[str], n: int, seed: int = 7) -> list[str]:
    """``n`` distinct queries: eval utterances with one character replaced and one inserted at random."""
    rng = random.Random(seed)
    chars = [c for t in texts for c in t]
    out: dict[str, None] = {}
    while len(out) < n:
        q = list(rng.choice(texts))
        q[rng.randrange(len(q))] = rng.choice(chars)
        q.insert(rng.randrange(len(q) + 1), rng.choice(chars))
        out["".join(q)] = None
    return list(out)


def measure(entries: list, queries: list[str], n_queries: int, settings: MatcherSettings) -> dict:
    rss0 = rss_mb()
    t = time.perf_counter()
    m = Matcher.build(entries, settings)
    cold = time.perf_counter() - t
    rss_matcher = rss_mb() - rss0
    edited = list(entries)
    e0 = edited[0]
    if isinstance(e0, FaqEntry):
        edited[0] = e0.model_copy(update={"variants": [*e0.variants, "编辑后新增的一个问法"]})
    t = time.perf_counter()
    Matcher.build(edited, settings)
    warm = time.perf_counter() - t
    for q in queries[:50]:  # warm-up
        m.match(q + "。")
    lat = []
    fresh = unique_queries(queries, n_queries)
    t0 = time.perf_counter()
    for q in fresh:
        t = time.perf_counter_ns()
        m.match(q)
        lat.append((time.perf_counter_ns() - t) / 1e6)
    wall = time.perf_counter() - t0
    lat.sort()
    return {"entries": len(m), "texts": sum(1 + len(e.variants) for e in entries),
            "build_cold_s": round(cold, 3), "rebuild_after_edit_s": round(warm, 3),
            "matches_per_s": round(n_queries / wall, 1), "p50_ms": round(statistics.median(lat), 3),
            "p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 3),
            "p99_ms": round(lat[int(0.99 * (len(lat) - 1))], 3), "max_ms": round(lat[-1], 3),
            "matcher_rss_mb": round(rss_matcher, 1)}


def reembed(entries: list[FaqEntry]) -> dict:
    """Embed every text of ``entries`` with a fresh model instance (no text cache), as after an import."""
    fresh = Embedder()
    fresh._cache.clear()  # noqa: SLF001 - the shipped default-KB vectors would flatter the figure
    texts = [t for e in entries for t in stored_texts(e.title or make_title(e.question), e.question, e.variants,
                                                      e.answer)]
    t = time.perf_counter()
    fresh.passages(texts)
    s = time.perf_counter() - t
    return {"entries": len(entries), "texts": len(texts), "seconds": round(s, 2),
            "ms_per_text": round(s * 1000 / len(texts), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[80, 1000, 10000])
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--reembed", type=int, nargs="*", default=[80, 1000], help="KB sizes to re-embed for real")
    ap.add_argument("--lexical", action="store_true", help="the lexical-only mode (kb.semantic = false)")
    ap.add_argument("--exact", action="store_true", help="no first pass at any size (every cosine exact)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kb_speed.json")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    settings = MatcherSettings(semantic=not args.lexical, **({"first_pass_min_texts": 10**9} if args.exact else {}))
    base = load_entries(default_kb_path())
    queries = [json.loads(line)["text"] for line in EVAL_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]
    out: dict = {"python": platform.python_version(), "machine": platform.machine(), "cpu_pinned": True,
                 "mode": "lexical" if args.lexical else "semantic", "queries": args.queries,
                 "first_pass_min_texts": settings.first_pass_min_texts}
    real: dict[str, np.ndarray] = {}
    if not args.lexical:
        rss0 = rss_mb()
        t = time.perf_counter()
        emb = get_embedder()
        emb.query("诉讼费怎么交")
        out["model"] = {"name": MODEL_NAME, "load_s": round(time.perf_counter() - t, 3),
                        "rss_mb": round(rss_mb() - rss0, 1)}
        print(f"model {MODEL_NAME}: loaded (with its SHA-256 check) in {out['model']['load_s']} s, "
              f"RSS +{out['model']['rss_mb']} MB")
        texts = [t for e in base for t in stored_texts(e.title or make_title(e.question), e.question, e.variants,
                                                       e.answer)]
        real = dict(zip(texts, emb.passages(texts), strict=True))
    rows = []
    print(f"{'entries':>8} {'texts':>7} {'build s':>8} {'rebuild s':>10} {'match/s':>8} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'RSS MB':>7}")
    for size in args.sizes:
        entries = synthesize(base, size)
        r = measure(entries if args.lexical else with_vectors(entries, real), queries, args.queries, settings)
        rows.append(r)
        print(f"{r['entries']:>8} {r['texts']:>7} {r['build_cold_s']:>8} {r['rebuild_after_edit_s']:>10} "
              f"{r['matches_per_s']:>8} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['p99_ms']:>8} {r['max_ms']:>8} "
              f"{r['matcher_rss_mb']:>7}")
    out["results"] = rows
    if not args.lexical and args.reembed:
        out["reembed"] = [reembed(synthesize(base, n)) for n in args.reembed]
        for r in out["reembed"]:
            print(f"re-embed after an import: {r['entries']} entries, {r['texts']} texts in {r['seconds']} s "
                  f"({r['ms_per_text']} ms a text)")
    big = rows[-1]
    print(f"goal at {big['entries']}: p95 <= 40 ms -> {big['p95_ms']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
