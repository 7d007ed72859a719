"""FAQ matcher speed: matches/s, p50/p99 latency and build time at 80, 1,000 and 10,000 entries, one core.

The larger knowledge bases are the default one plus generated distinct entries whose questions and
variants are random sequences of words cut from the default texts (so character and sound pairs are
distributed like real FAQ text). Queries are the utterances of tests/data/kb_eval.jsonl, each time with one
character replaced and one inserted at random (as a recognizer's errors would), so every query is new
and no per-text cache of the matcher flatters the figures.
Build time is given cold (texts never seen by this process: normalisation, pinyin and features
computed) and warm (rebuild after editing one entry: per-text work is cached, as in a running hub).
Writes bench/results/kb_speed.json.

    .venv/bin/python bench/kb_speed.py [--sizes 80 1000 10000] [--queries 3000]
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

from knowledge_base.entry import FaqEntry  # noqa: E402
from knowledge_base.matcher import Matcher, default_kb_path, load_entries  # noqa: E402
from knowledge_base.settings import MatcherSettings  # noqa: E402

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


def measure(entries: list[FaqEntry], queries: list[str], n_queries: int) -> dict:
    settings = MatcherSettings()
    t = time.perf_counter()
    m = Matcher.build(entries, settings)
    cold = time.perf_counter() - t
    edited = list(entries)
    e0 = edited[0]
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
            "p99_ms": round(lat[int(0.99 * (len(lat) - 1))], 3), "max_ms": round(lat[-1], 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[80, 1000, 10000])
    ap.add_argument("--queries", type=int, default=3000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kb_speed.json")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    base = load_entries(default_kb_path())
    queries = [json.loads(line)["text"] for line in EVAL_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = []
    print(f"{'entries':>8} {'texts':>7} {'build cold s':>13} {'rebuild s':>10} {'matches/s':>10} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8}")
    for size in args.sizes:
        r = measure(synthesize(base, size), queries, args.queries)
        rows.append(r)
        print(f"{r['entries']:>8} {r['texts']:>7} {r['build_cold_s']:>13} {r['rebuild_after_edit_s']:>10} "
              f"{r['matches_per_s']:>10} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['max_ms']:>8}")
    big = rows[-1]
    print(f"goal at {big['entries']}: >= 1000 matches/s -> {big['matches_per_s']}, p99 <= 5 ms -> {big['p99_ms']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"python": platform.python_version(), "machine": platform.machine(),
                                    "cpu_pinned": True, "queries": args.queries, "results": rows}, indent=1) + "\n")
    print(f"wrote {args.out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
