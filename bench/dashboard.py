"""The supervisors' dashboard over a million work orders (issue 7, acceptance 4): bulk intake rate and the time
of the page's data (every figure of ``GET /api/dashboard`` with the hot topics) for random filter combinations,
on SQLite (a temporary file) and PostgreSQL (``--pg URL``, or a throw-away local cluster started from Debian's
packages with ``--pg auto``), from the day summaries of migration 0007 and, for comparison, from the rows with
plain indexes only. Prints a table and writes bench/results/dashboard.json.

    .venv/bin/python bench/dashboard.py [--orders 1000000] [--calls 1000000] [--combos 30] [--pg auto|URL|none]

Data: bench/dashboard_data.py (two court years of orders through their whole loop, calls, unanswered questions).
Intake goes through the database's bulk path (SQLAlchemy executemany on SQLite, COPY on PostgreSQL) with the
summary triggers on. Each combination is timed once after one untimed warm-up run of the same page.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from dashboard_data import DEPARTMENTS, TZ, generate  # noqa: E402
from sqlalchemy import select, text  # noqa: E402

from agent_console.dashboard.figures import figures  # noqa: E402
from agent_console.dashboard.filters import parse_filters  # noqa: E402
from agent_console.dashboard.topics import hot_topics  # noqa: E402
from agent_console.kb.unanswered import MatchCache  # noqa: E402
from hotline.db import make_engine, session_factory, upgrade_engine  # noqa: E402
from knowledge_base.matcher import Matcher, default_kb_path, load_entries  # noqa: E402
from tests.pg_support import LocalPostgres  # noqa: E402
from work_orders.models import Department  # noqa: E402
from work_orders.settings import CATEGORIES  # noqa: E402

NOW = datetime(2026, 12, 31, 15, 0, tzinfo=TZ)
GOAL_MS = 300.0


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def combos(n: int, rng: random.Random) -> list[dict[str, Any]]:
    today = NOW.date()
    out = []
    for _ in range(n):
        kind = rng.choice(["today", "7d", "30d", "month", "90d", "year", "range"])
        if kind == "today":
            a, b = today, today
        elif kind in ("7d", "30d", "90d"):
            a, b = today - timedelta(days=int(kind[:-1]) - 1), today
        elif kind == "month":
            a, b = today.replace(day=1), today
        elif kind == "year":
            a, b = date(today.year, 1, 1), today
        else:
            span = rng.randint(1, 366)
            b = today - timedelta(days=rng.randint(0, 729 - span))
            a = b - timedelta(days=span - 1)
        out.append({"kind": kind, "from": a.isoformat(), "to": b.isoformat(),
                    "category": rng.choice(CATEGORIES) if rng.random() < 0.5 else None,
                    "department": rng.choice(DEPARTMENTS) if rng.random() < 0.4 else None})
    return out


def page(sm, matcher: Matcher, cache: MatchCache, c: dict[str, Any], source: str) -> dict[str, Any]:
    f = parse_filters(c["from"], c["to"], c["category"], c["department"], today=NOW.date(), tz=TZ)
    with sm() as db:
        data = figures(db, f, NOW, source=source)
        data["hot_topics"] = hot_topics(db, f, matcher, role="supervisor", cache=cache)
        data["departments"] = list(db.scalars(select(Department.name).order_by(Department.name)))
    return data


def time_pages(engine, items: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    sm = session_factory(engine)
    matcher = Matcher.build(load_entries(default_kb_path()))
    cache = MatchCache()
    out = []
    for c in items:
        page(sm, matcher, cache, c, source)  # warm-up: caches, the matcher's answers for the period's questions
        t0 = time.perf_counter()
        data = page(sm, matcher, cache, c, source)
        ms = (time.perf_counter() - t0) * 1000
        out.append({**c, "ms": round(ms, 1), "source": data["source"], "received": data["orders"]["received"],
                    "closed": data["handling"]["closed"], "p90_exact": data["handling"]["p90_exact"]})
    return out


# ------------------------------------------------------------------------------------------- PostgreSQL
def prepare_schema(engine) -> str:
    """Migrate to head; if an older migration does not run on this database, build the tables it makes from the
    models, stamp it, and run the dashboard's migration 0007 for real. Returns a note for the results."""
    try:
        upgrade_engine(engine)
        return "migrations 0001..head"
    except Exception as e:  # noqa: BLE001 - reported in the results
        from alembic import command

        from hotline.db import alembic_config, current_revision, metadatas

        failed = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
        at = current_revision(engine)
        dash = ("dashboard_meta", "dashboard_order_days", "dashboard_call_days")
        for md in metadatas():
            md.create_all(engine, tables=[t for t in md.sorted_tables if t.name not in dash])
        with engine.begin() as c:
            c.execute(text("DROP INDEX IF EXISTS ix_call_events_type_ts"))
            c.execute(text("DROP INDEX IF EXISTS ix_work_orders_rated_at"))
            c.execute(text("DROP INDEX IF EXISTS ix_work_orders_open"))
        command.stamp(alembic_config(engine), "0006")
        upgrade_engine(engine)
        return (f"migrations stopped at {at or 'the start (rolled back)'} ({failed}); tables up to 0006 from the "
                "models, then 0007 migrated")


def run_backend(name: str, url: str, args: argparse.Namespace, items: list[dict[str, Any]]) -> dict[str, Any]:
    print(f"\n== {name}: {url.split('@')[-1]}", flush=True)
    engine = make_engine(url)
    try:
        note = prepare_schema(engine)
        print(f"  schema: {note}", flush=True)
        intake = generate(engine, orders=args.orders, calls=args.calls, now=NOW)
        print(f"  intake: {intake}", flush=True)
        with engine.begin() as c:
            c.execute(text("ANALYZE"))
            summary_rows = c.execute(text("SELECT count(*) FROM dashboard_order_days")).scalar()
        res: dict[str, Any] = {"schema": note, "intake": intake, "summary_rows": summary_rows}
        for source in ("summary", "orders"):
            if source == "orders" and args.skip_raw:
                continue
            runs = time_pages(engine, items, source)
            ms = [r["ms"] for r in runs]
            res[source] = {"p50_ms": round(pct(ms, 0.5), 1), "p95_ms": round(pct(ms, 0.95), 1),
                           "max_ms": round(max(ms), 1), "mean_ms": round(statistics.mean(ms), 1), "runs": runs}
            print(f"  {source:8s} p50 {res[source]['p50_ms']:8.1f} ms  p95 {res[source]['p95_ms']:8.1f} ms  "
                  f"max {res[source]['max_ms']:8.1f} ms", flush=True)
        return res
    finally:
        engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--combos", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--pg", default="auto", help="auto (start a local cluster), a SQLAlchemy URL, or none")
    ap.add_argument("--skip-raw", action="store_true", help="time only the summaries")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/dashboard.json")
    args = ap.parse_args()
    items = combos(args.combos, random.Random(args.seed))
    results: dict[str, Any] = {
        "when": datetime.now().isoformat(timespec="seconds"), "machine": platform.platform(),
        "cores": os.cpu_count(), "python": platform.python_version(), "orders": args.orders, "calls": args.calls,
        "now": NOW.isoformat(), "goal_p95_ms": GOAL_MS, "combos": items, "backends": {}}
    with tempfile.TemporaryDirectory(prefix="dashbench-") as tmp:
        results["backends"]["sqlite"] = run_backend("SQLite", f"sqlite:///{tmp}/dashboard.db", args, items)
    if args.pg != "none":
        local = None
        try:
            url = args.pg
            if args.pg == "auto":
                local = LocalPostgres(prefix="dashpg-", options="-c shared_buffers=512MB -c work_mem=64MB")
                url = local.start().create_database(name="dashboard")
            results["backends"]["postgresql"] = run_backend("PostgreSQL", url, args, items)
        except Exception as e:  # noqa: BLE001 - no PostgreSQL here: say so in the results
            results["backends"]["postgresql"] = {"error": f"{type(e).__name__}: {e}"}
            print(f"PostgreSQL skipped: {e}")
        finally:
            if local is not None:
                local.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"\n{'backend':12s} {'source':9s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s} {'goal':>6s}   intake rows/s")
    for name, r in results["backends"].items():
        if "error" in r:
            print(f"{name:12s} {r['error']}")
            continue
        for source in ("summary", "orders"):
            if source in r:
                s = r[source]
                print(f"{name:12s} {source:9s} {s['p50_ms']:8.1f} {s['p95_ms']:8.1f} {s['max_ms']:8.1f} "
                      f"{'met' if s['p95_ms'] <= GOAL_MS else 'MISSED':>6s}   "
                      f"orders {r['intake']['orders']['insert_rows_per_s']:,}, "
                      f"calls {r['intake']['calls']['insert_rows_per_s']:,}")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
