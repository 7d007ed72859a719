"""The dashboard's figures from the day summaries (``dashboard_order_days``, ``dashboard_call_days``, kept by
the triggers of migration 0007): a year is at most 366 days × categories × departments rows, whatever the
number of orders.

They give the same numbers as counting the rows (:func:`agent_console.dashboard.queries.raw_figures`; a test
checks it) except p90: where more than ``exact_p90_max`` orders closed in the period it is read from the
handling-time histogram (buckets :data:`HANDLING_EDGES`, linear inside the bucket; ``p90_exact`` false),
else it is the exact nearest-rank value from the rows.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from agent_console.dashboard.filters import Filters
from agent_console.dashboard.queries import (
    as_date,
    dialect,
    handling_hours,
    offset_segments,
    order_conditions,
    p90_rank,
    ratio,
    rounded,
)
from agent_console.models import HANDLING_EDGES, DashboardCallDay, DashboardMeta, DashboardOrderDay
from work_orders.models import WorkOrder
from work_orders.settings import CATEGORIES, CATEGORY_NAMES

D = DashboardOrderDay
HCOLS = [f"h{i:02d}" for i in range(len(HANDLING_EDGES) + 1)]
#: up to this many orders closed in the period, p90 is the exact value from the rows (~20 ms on SQLite)
EXACT_P90_MAX = 10_000


def usable(db: Session, f: Filters) -> bool:
    """Whether the summaries count the period's days as the court's: PostgreSQL keeps them in a named zone;
    SQLite in a fixed offset, which must be the zone's throughout the period (and the day around it)."""
    try:
        meta = db.get(DashboardMeta, 1)
    except DBAPIError:  # a database without migration 0007
        db.rollback()
        return False
    if meta is None:
        return False
    if dialect(db) != "sqlite":
        return meta.timezone == f.tz.key
    segs = offset_segments(f.start_utc - timedelta(days=1), f.end_utc + timedelta(days=1), f.tz)
    return len(segs) == 1 and segs[0][2] == meta.offset_minutes


def _conds(f: Filters) -> list[Any]:
    conds = [D.day >= f.start, D.day <= f.end]
    if f.category:
        conds.append(D.category == f.category)
    if f.department:
        conds.append(D.department == f.department)
    return conds


def histogram_p90(hist: list[int]) -> float | None:
    """The nearest-rank p90 read from bucket counts, linear inside its bucket (the last bucket: its lower edge)."""
    n = sum(hist)
    if not n:
        return None
    k = p90_rank(n)
    before = 0
    for b, c in enumerate(hist):
        if c and before + c > k:
            lo = HANDLING_EDGES[b - 1] if b else 0.0
            if b == len(HANDLING_EDGES):
                return float(lo)
            return lo + (HANDLING_EDGES[b] - lo) * (k - before + 0.5) / c
        before += c
    return None  # pragma: no cover - k < n always lands in a bucket


def call_figures(db: Session, f: Filters, now: datetime) -> dict[str, Any]:
    C = DashboardCallDay
    today = now.astimezone(f.tz).date()
    calls_today = db.scalar(select(C.calls).where(C.day == today)) or 0
    total, consult, kb = db.execute(select(func.sum(C.calls), func.sum(C.consult), func.sum(C.answered_by_kb))
                                    .where(C.day >= f.start, C.day <= f.end)).one()
    return {"today": int(calls_today), "period": int(total or 0), "consult": int(consult or 0),
            "answered_by_kb": int(kb or 0), "auto_answered_share": ratio(kb, consult)}


def exact_p90(db: Session, f: Filters, n: int) -> float | None:
    hours = handling_hours(db)
    return db.scalar(select(hours).where(*order_conditions(f, WorkOrder.closed_at)).order_by(hours)
                     .limit(1).offset(p90_rank(n)))


def summary_figures(db: Session, f: Filters, now: datetime, *, exact_p90_max: int = EXACT_P90_MAX
                    ) -> dict[str, Any]:
    cols = [D.received, D.settled_at_once, D.closed, D.handling_hours, D.rated, D.rating_sum, D.satisfied]
    hcols = [getattr(D, c) for c in HCOLS]
    # one pass over the summaries: per day and category (at most 366 x 6 rows), folded here
    rows = db.execute(select(D.day, D.category, *[func.sum(c) for c in cols + hcols]).where(*_conds(f))
                      .group_by(D.day, D.category)).all()
    per_day: dict[date, list[float]] = {}
    by_cat: dict[str, int] = {}
    for r in rows:
        acc = per_day.setdefault(as_date(r[0]), [0.0] * (len(cols) + len(hcols)))
        for i, x in enumerate(r[2:]):
            acc[i] += x or 0
        by_cat[r[1]] = by_cat.get(r[1], 0) + int(r[2] or 0)
    tot = [0.0] * (len(cols) + len(hcols))
    for v in per_day.values():
        for i, x in enumerate(v):
            tot[i] += x
    received, settled, closed, hours, rated, rating_sum, satisfied = tot[:7]
    hist = [int(x) for x in tot[7:]]
    closed = int(closed)
    # the exact p90 reads every order closed in the period (category and department are checked row by row)
    scanned = closed if not (f.category or f.department) or closed > exact_p90_max else int(db.scalar(
        select(func.coalesce(func.sum(D.closed), 0)).where(D.day >= f.start, D.day <= f.end)) or 0)
    exact = scanned <= exact_p90_max
    p90 = (exact_p90(db, f, closed) if exact else histogram_p90(hist)) if closed else None
    cats = [f.category] if f.category else list(CATEGORIES)
    trend = []
    for d in f.days:
        v = per_day.get(d)
        r_n, s_n, c_n, t_n, t_sum = (int(v[0]), int(v[1]), int(v[2]), int(v[4]), v[5]) if v else (0, 0, 0, 0, 0)
        trend.append({"day": d.isoformat(), "received": r_n, "settled_at_once": s_n, "closed": c_n, "rated": t_n,
                      "mean_rating": rounded(t_sum / t_n) if t_n else None})
    return {
        "calls": call_figures(db, f, now),
        "orders": {"received": int(received), "settled_at_once": int(settled),
                   "settled_at_once_share": ratio(settled, received)},
        "handling": {"closed": closed, "avg_hours": rounded(hours / closed) if closed else None,
                     "p90_hours": rounded(p90), "p90_exact": exact},
        "satisfaction": {"rated": int(rated), "mean_rating": rounded(rating_sum / rated) if rated else None,
                         "satisfied": int(satisfied), "satisfied_share": ratio(satisfied, rated)},
        "categories": [{"category": c, "name": CATEGORY_NAMES[c], "count": int(by_cat.get(c) or 0)} for c in cats],
        "trend": trend,
    }



