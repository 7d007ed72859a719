"""A synthetic court year for the dashboard benchmark: work orders through their whole loop, calls, and the
knowledge base's unanswered questions, bulk-inserted through SQLAlchemy Core (the project's own tables).

Deterministic for a seed. Orders are spread over ``days`` local days ending at ``now`` (working days busier than
weekends, office hours), 40 % of consult/query orders settled at once, the rest dispatched to one of 20
departments and judge teams, answered after a log-normal delay (median about 30 h), called back and rated
(10 % rated 1–2 and reopened, then closed again); orders whose next step lies after ``now`` stay open, some
are flagged overdue. Calls reach the consult menu in 35 % of cases; 45 % of those end answered by the
knowledge base, the others hand off with an unanswered question (out-of-scope texts of the KB evaluation set,
Zipf-distributed).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert

from agent_console.models import Call, CallEventRecord
from work_orders.models import Department, WorkOrder

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Shanghai")
DEPARTMENTS = ["立案庭", "民一庭", "民二庭", "民三庭", "刑事审判庭", "行政审判庭", "执行局", "执行裁判庭",
               "审判管理办公室", "诉讼服务中心", "信访办", "督办", "民一庭张伟法官团队", "民一庭李娜法官团队",
               "民二庭王强法官团队", "民二庭刘洋法官团队", "刑事审判庭陈静法官团队", "执行局赵磊法官团队",
               "执行局孙丽法官团队", "行政审判庭周杰法官团队"]
CATEGORY_WEIGHTS = {"consult": 40, "query": 25, "urge": 12, "contact_judge": 10, "complaint": 8, "suggestion": 5}
FEEDBACK_DAYS = {"consult": 3, "query": 2, "urge": 3, "contact_judge": 2, "complaint": 5, "suggestion": 5}
CHANNELS = (["hotline"] * 80 + ["web"] * 12 + ["walk_in"] * 5 + ["letter"] * 2 + ["api"])
RATINGS = [5] * 55 + [4] * 25 + [3] * 10 + [2] * 6 + [1] * 4
BATCH = 20_000


def _texts() -> list[str]:
    rows = [json.loads(line) for line in (ROOT / "tests/data/kb_eval.jsonl").read_text(encoding="utf-8").splitlines()]
    return [r["text"] for r in rows if r["expected"] is None]


def _local_moment(rng: random.Random, days: list[date]) -> datetime:
    d = rng.choice(days)
    minute = 510 + rng.random() * 540 if rng.random() < 0.93 else rng.random() * 1440  # 08:30-17:30 mostly
    return (datetime(d.year, d.month, d.day, tzinfo=TZ) + timedelta(minutes=minute)).astimezone(UTC)


def _weighted_days(end: date, n_days: int) -> list[date]:
    out = []
    for i in range(n_days):
        d = end - timedelta(days=i)
        out += [d] * (7 if d.weekday() < 5 else 1)
    return out


def order_rows(n: int, now: datetime, n_days: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    days = _weighted_days(now.astimezone(TZ).date(), n_days)
    cats = [c for c, w in CATEGORY_WEIGHTS.items() for _ in range(w)]
    per_day: dict[date, int] = {}
    h = timedelta(hours=1)
    for i in range(n):
        created = _local_moment(rng, days)
        if created > now:
            created = now - timedelta(minutes=rng.random() * 600)
        day = created.astimezone(TZ).date()
        seq = per_day[day] = per_day.get(day, 0) + 1
        cat = rng.choice(cats)
        r: dict[str, Any] = {
            "number": f"12368-{day:%Y%m%d}-{seq:04d}" if seq < 10_000 else f"12368-{day:%Y%m%d}-{seq}",
            "channel": rng.choice(CHANNELS), "category": cat, "subcategory": "", "tags": [], "status": "received",
            "settled_at_once": False, "citizen_name": "", "citizen_phone": f"138{rng.randrange(10**8):08d}",
            "citizen_id_number": "", "case_number": "", "content": f"来电人反映的问题 {i}", "call_id": None,
            "transcript": [], "notes": [], "recordings": [], "auto_key": None, "created_by": "bench",
            "created_at": created, "updated_at": created, "closed_at": None, "callback_due": None,
            "assignee": None, "dispatch_due": created + 8 * h, "dispatched_at": None, "feedback_due": None,
            "extension_requested": None, "answered_at": None, "feedback": "", "feedback_late": False,
            "overdue": False, "callback_started_at": None, "callback_attempts": 0, "next_callback_at": None,
            "rating": None, "rated_at": None, "reopen_count": 0}
        if cat in ("consult", "query") and rng.random() < 0.4 or rng.random() < 0.05:
            closed = created + timedelta(minutes=rng.random() * 10)
            if closed <= now:
                r.update(settled_at_once=True, status="closed", closed_at=closed, updated_at=closed)
                yield r
                continue
        dispatched = created + rng.uniform(0.1, 6) * h
        if dispatched > now:
            yield r
            continue
        due = dispatched + FEEDBACK_DAYS[cat] * 24 * h * 1.4
        r.update(status="dispatched", assignee=rng.choice(DEPARTMENTS), dispatched_at=dispatched, feedback_due=due,
                 updated_at=dispatched)
        stuck = rng.random() < 0.004
        answered = dispatched + rng.lognormvariate(3.4, 0.8) * h
        if stuck or answered > now:
            r["status"] = "in_progress" if rng.random() < 0.7 else "dispatched"
            r["overdue"] = due < now
            yield r
            continue
        r.update(status="answered", answered_at=answered, feedback="已答复", feedback_late=answered > due,
                 updated_at=answered)
        started = answered + rng.uniform(1, 24) * h
        if started > now:
            yield r
            continue
        rated = started + rng.uniform(0, 2) * h
        rating = rng.choice(RATINGS)
        r.update(status="callback", callback_started_at=started, callback_attempts=1, updated_at=started)
        if rated > now:
            yield r
            continue
        r.update(rating=rating, rated_at=rated, updated_at=rated)
        if rating <= 2:
            again = rated + rng.uniform(24, 96) * h
            r.update(status="reopened", reopen_count=1)
            if again > now:
                yield r
                continue
            rated, rating = again, rng.choice([3, 4, 5])
            r.update(rating=rating, rated_at=rated, assignee=rng.choice(DEPARTMENTS))
        r.update(status="closed", closed_at=rated, updated_at=rated)
        yield r


def call_rows(n: int, now: datetime, n_days: int, rng: random.Random, texts: list[str]
              ) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    days = _weighted_days(now.astimezone(TZ).date(), n_days)
    weights = [1 / (k + 1) for k in range(len(texts))]
    others = [["welcome", "main", "case_query", "case_number", "query_done"], ["welcome", "main", "contact_judge"],
              ["welcome", "main", "operator"], ["welcome", "main", "urge"], ["welcome"]]
    for i in range(n):
        started = _local_moment(rng, days)
        if started > now:
            started = now - timedelta(minutes=rng.random() * 600)
        ended = started + timedelta(seconds=rng.uniform(20, 400))
        cid = f"bench-{i:09d}"
        event = None
        if rng.random() < 0.35:
            if rng.random() < 0.45:
                path, cause = ["welcome", "main", "consult"], "answered_by_kb"
            else:
                path, cause = ["welcome", "main", "consult", "consult_staff"], "hangup"
                text = rng.choices(texts, weights)[0]
                event = {"event_id": f"{cid}-kb", "call_id": cid, "worker": "w0", "type": "kb_decided",
                         "ts": started + timedelta(seconds=15), "received_at": started + timedelta(seconds=15),
                         "payload": {"decision": "handoff", "query": text, "node": "consult"}}
        else:
            path, cause = rng.choice(others), "hangup"
        yield ({"call_id": cid, "direction": "inbound", "caller": f"139{rng.randrange(10**8):08d}", "callee": "12368",
                "source": "", "sip_call_id": cid, "worker": "w0", "started_at": started, "offered_at": started,
                "answered_at": started, "ended_at": ended, "status": "ended", "end_cause": cause, "end_side": "caller",
                "status_code": 200, "menu_path": path, "digits": "", "prompts": [], "transcript": [],
                "handoff_reason": None, "media": None, "updated_at": ended}, event)


def _batches(rows: Iterator[Any], size: int = BATCH) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for r in rows:
        batch.append(r)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _copy(engine: Engine, table: Any, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: one COPY per batch (the statement-level summary trigger sums the batch at once)."""
    from psycopg.types.json import Json

    cols = [c.name for c in table.columns if c.name in rows[0]]
    json_cols = {c.name for c in table.columns if c.type.__class__.__name__ == "JSON"}
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as cp:
            for r in rows:
                cp.write_row([Json(r[c]) if c in json_cols and r[c] is not None else r[c] for c in cols])
        raw.commit()
    finally:
        raw.close()


def _insert(engine: Engine, model: Any, rows: list[dict[str, Any]]) -> None:
    """One batch through the bulk path of the database: COPY on PostgreSQL, an executemany INSERT on SQLite."""
    if engine.dialect.name == "postgresql":
        _copy(engine, model.__table__, rows)
    else:
        with engine.begin() as conn:
            conn.execute(insert(model), rows)


def generate(engine: Engine, *, orders: int, calls: int, now: datetime, days: int = 730, seed: int = 12368,
             progress: bool = True) -> dict[str, Any]:
    """Insert ``orders`` work orders and ``calls`` calls; returns the intake times and rates."""
    rng = random.Random(seed)
    out: dict[str, Any] = {}
    with engine.begin() as conn:
        conn.execute(insert(Department), [{"name": d, "kind": "judge_team" if "团队" in d else "department",
                                          "active": True, "created_at": now} for d in DEPARTMENTS])
    t0 = time.perf_counter()
    gen_s = 0.0
    done = 0
    rows = order_rows(orders, now, days, rng)
    while True:
        g0 = time.perf_counter()
        batch = next(_batches(rows), None)
        gen_s += time.perf_counter() - g0
        if not batch:
            break
        _insert(engine, WorkOrder, batch)
        done += len(batch)
        if progress and done % 200_000 == 0:
            print(f"  {done:,} orders, {done / (time.perf_counter() - t0):,.0f}/s", flush=True)
    total = time.perf_counter() - t0
    out["orders"] = {"rows": done, "seconds": round(total, 2), "generate_s": round(gen_s, 2),
                     "insert_rows_per_s": round(done / max(total - gen_s, 1e-9))}
    t0, gen_s, done, n_events = time.perf_counter(), 0.0, 0, 0
    pairs = call_rows(calls, now, days, rng, _texts())
    while True:
        g0 = time.perf_counter()
        batch = next(_batches(pairs), None)
        gen_s += time.perf_counter() - g0
        if not batch:
            break
        events = [e for _, e in batch if e is not None]
        _insert(engine, Call, [c for c, _ in batch])
        if events:
            _insert(engine, CallEventRecord, events)
        done += len(batch)
        n_events += len(events)
    total = time.perf_counter() - t0
    out["calls"] = {"rows": done, "events": n_events, "seconds": round(total, 2), "generate_s": round(gen_s, 2),
                    "insert_rows_per_s": round(done / max(total - gen_s, 1e-9))}
    return out
