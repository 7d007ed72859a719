"""The dashboard's figures, computed in the database with aggregates (nothing loads all orders into Python).

What each figure counts (``f`` = the filters; "in the period" = the local days ``f.start`` .. ``f.end``):

- calls: calls *started* today and in the period (the ``calls`` table; category and department do not apply
  to calls); ``consult`` = calls whose menu path reached the consult node, ``answered_by_kb`` = calls that
  ended because the knowledge base answered; auto-answered share = answered_by_kb / (consult or answered_by_kb);
- orders: work orders *received* (``created_at``) in the period; settled at once (即办) = those with
  ``settled_at_once``, and their share of the received;
- handling: orders *closed* in the period, handling hours = closed_at − created_at (received → closed);
  mean and p90 (nearest rank: the ⌈0.9·n⌉-th smallest);
- satisfaction: orders *rated* in the period (their last rating): count, mean, count and share of 4–5;
- overdue: open orders (not closed) *now* that are flagged overdue or wait for feedback past ``feedback_due``,
  per assignee ("" = not dispatched); the period does not apply (it is the current backlog);
- categories: orders received in the period per category; trend: per local day, received, settled at once,
  closed and the mean rating of that day.

Days are the court's (``f.tz``): PostgreSQL converts with ``AT TIME ZONE``; SQLite adds the zone's UTC offset,
split at offset changes so a zone with daylight saving time is still counted by its own days.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Text, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from agent_console.dashboard.filters import Filters
from agent_console.models import Call
from work_orders.models import Department, WorkOrder
from work_orders.rules import STATES
from work_orders.settings import CATEGORIES, CATEGORY_NAMES

W = WorkOrder
CONSULT_NODE = "consult"
KB_END_CAUSE = "answered_by_kb"
AWAITING_FEEDBACK = ("dispatched", "in_progress")
NO_DEPARTMENT = ""


def ratio(num: float | int | None, den: float | int | None, digits: int = 4) -> float | None:
    return round(num / den, digits) if num is not None and den else None


def rounded(x: float | None, digits: int = 2) -> float | None:
    return None if x is None else round(float(x), digits)


def p90_rank(n: int) -> int:
    """The 0-based position of the nearest-rank 90th percentile among ``n`` sorted values."""
    return max(math.ceil(0.9 * n) - 1, 0)


# ------------------------------------------------------------------------------------------- dialect
def dialect(db: Session) -> str:
    return db.get_bind().dialect.name


def handling_hours(db: Session) -> ColumnElement[float]:
    """closed_at − created_at in hours."""
    if dialect(db) == "sqlite":
        return (func.julianday(W.closed_at) - func.julianday(W.created_at)) * 24.0
    return func.extract("epoch", W.closed_at - W.created_at) / 3600.0


def offset_segments(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[datetime, datetime, int]]:
    """``[start, end)`` cut where ``tz``'s UTC offset changes: ``(from, to, offset minutes)`` pieces."""
    def off(t: datetime) -> int:
        o = t.astimezone(tz).utcoffset()
        return int(o.total_seconds() // 60) if o is not None else 0

    out: list[tuple[datetime, datetime, int]] = []
    a = start
    while a < end:
        b, o = a, off(a)
        step = timedelta(hours=6)
        while b < end and off(min(b + step, end - timedelta(microseconds=1))) == o:
            b = min(b + step, end)
        if b < end:  # the change lies in (b, b + step]: bisect to the second (zones change on whole seconds)
            lo, hi = int(b.timestamp()), math.ceil(min(b + step, end).timestamp())
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if off(datetime.fromtimestamp(mid, UTC)) == o else (lo, mid)
            b = max(datetime.fromtimestamp(hi, UTC), b + timedelta(microseconds=1))
        out.append((a, b, o))
        a = b
    return out


def local_day(db: Session, col: Any, tz: ZoneInfo, offset_min: int) -> ColumnElement[Any]:
    """The court's day of ``col`` (``offset_min`` is used by SQLite only, for its segment of the period)."""
    if dialect(db) == "sqlite":
        return func.date(col, literal(f"{offset_min:+d} minutes"))
    return func.date(func.timezone(tz.key, col))


def as_date(v: Any) -> date:
    return v if isinstance(v, date) else date.fromisoformat(str(v)[:10])


# ------------------------------------------------------------------------------------------- filters
def order_conditions(f: Filters, col: Any | None = None, start: datetime | None = None,
                     end: datetime | None = None) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if col is not None:
        conds += [col >= (start or f.start_utc), col < (end or f.end_utc)]
    if f.category:
        conds.append(W.category == f.category)
    if f.department:
        conds.append(W.assignee == f.department)
    return conds


def _one(db: Session, *cols: Any, where: list[ColumnElement[bool]]) -> Any:
    return db.execute(select(*cols).where(*where)).one()


# ------------------------------------------------------------------------------------------- figures
def call_figures(db: Session, f: Filters, now: datetime) -> dict[str, Any]:
    today = now.astimezone(f.tz).date()
    t0 = datetime.combine(today, time(0), f.tz)
    calls_today = db.scalar(select(func.count()).select_from(Call)
                            .where(Call.started_at >= t0, Call.started_at < t0 + timedelta(days=1))) or 0
    consult = cast(Call.menu_path, Text).like(f'%"{CONSULT_NODE}"%')
    by_kb = Call.end_cause == KB_END_CAUSE
    row = _one(db, func.count(), func.sum(case((or_(consult, by_kb), 1), else_=0)),
               func.sum(case((by_kb, 1), else_=0)),
               where=[Call.started_at >= f.start_utc, Call.started_at < f.end_utc])
    total, consult_n, kb_n = row[0] or 0, row[1] or 0, row[2] or 0
    return {"today": int(calls_today), "period": int(total), "consult": int(consult_n),
            "answered_by_kb": int(kb_n), "auto_answered_share": ratio(kb_n, consult_n)}


def order_figures(db: Session, f: Filters) -> dict[str, Any]:
    row = _one(db, func.count(), func.sum(case((W.settled_at_once.is_(True), 1), else_=0)),
               where=order_conditions(f, W.created_at))
    received, settled = int(row[0] or 0), int(row[1] or 0)
    return {"received": received, "settled_at_once": settled, "settled_at_once_share": ratio(settled, received)}


def handling_figures(db: Session, f: Filters) -> dict[str, Any]:
    hours = handling_hours(db)
    where = order_conditions(f, W.closed_at)
    n, mean = _one(db, func.count(), func.avg(hours), where=where)
    n = int(n or 0)
    p90 = None
    if n:
        p90 = db.scalar(select(hours).where(*where).order_by(hours).limit(1).offset(p90_rank(n)))
    return {"closed": n, "avg_hours": rounded(mean), "p90_hours": rounded(p90)}


def satisfaction_figures(db: Session, f: Filters) -> dict[str, Any]:
    n, mean, good = _one(db, func.count(), func.avg(W.rating * 1.0), func.sum(case((W.rating >= 4, 1), else_=0)),
                         where=[*order_conditions(f, W.rated_at), W.rating.is_not(None)])
    n, good = int(n or 0), int(good or 0)
    return {"rated": n, "mean_rating": rounded(mean), "satisfied": good, "satisfied_share": ratio(good, n)}


OPEN_STATES = tuple(s for s in STATES if s != "closed")


def overdue_filter(now: datetime) -> ColumnElement[bool]:
    # status != 'closed' as written here lets SQLite use the partial index of open orders (migration 0007)
    return (W.status != "closed") & W.status.in_(OPEN_STATES) & or_(
        W.overdue.is_(True), W.status.in_(AWAITING_FEEDBACK) & (W.feedback_due < now))


def overdue_by_department(db: Session, f: Filters, now: datetime) -> list[dict[str, Any]]:
    dep = func.coalesce(W.assignee, NO_DEPARTMENT)
    rows = db.execute(select(dep, func.count()).where(overdue_filter(now), *order_conditions(f)).group_by(dep)).all()
    return [{"department": d, "count": int(n)} for d, n in sorted(rows, key=lambda r: (-r[1], r[0]))]


def category_counts(db: Session, f: Filters) -> list[dict[str, Any]]:
    rows = dict(db.execute(select(W.category, func.count()).where(*order_conditions(f, W.created_at))
                           .group_by(W.category)).all())
    cats = [f.category] if f.category else list(CATEGORIES)
    return [{"category": c, "name": CATEGORY_NAMES[c], "count": int(rows.get(c, 0))} for c in cats]


def _by_day(db: Session, f: Filters, col: Any, *aggs: Any, extra: list[ColumnElement[bool]] | None = None
            ) -> Iterator[tuple[date, tuple[Any, ...]]]:
    segments = ([(f.start_utc, f.end_utc, 0)] if dialect(db) != "sqlite"
                else offset_segments(f.start_utc, f.end_utc, f.tz))
    for a, b, off in segments:
        day = local_day(db, col, f.tz, off)
        q = select(day, *aggs).where(*order_conditions(f, col, a, b), *(extra or [])).group_by(day)
        for row in db.execute(q):
            yield as_date(row[0]), tuple(row[1:])


def trend(db: Session, f: Filters) -> list[dict[str, Any]]:
    acc: dict[date, list[float]] = defaultdict(lambda: [0, 0, 0, 0, 0])  # received, settled, closed, rated, sum
    for d, (n, s) in _by_day(db, f, W.created_at, func.count(), func.sum(case((W.settled_at_once.is_(True), 1),
                                                                              else_=0))):
        acc[d][0] += n or 0
        acc[d][1] += s or 0
    for d, (n,) in _by_day(db, f, W.closed_at, func.count()):
        acc[d][2] += n or 0
    for d, (n, s) in _by_day(db, f, W.rated_at, func.count(), func.sum(W.rating), extra=[W.rating.is_not(None)]):
        acc[d][3] += n or 0
        acc[d][4] += s or 0
    return [{"day": d.isoformat(), "received": int(acc[d][0]), "settled_at_once": int(acc[d][1]),
             "closed": int(acc[d][2]), "rated": int(acc[d][3]),
             "mean_rating": rounded(acc[d][4] / acc[d][3]) if acc[d][3] else None}
            for d in f.days]


def department_exists(db: Session, name: str) -> bool:
    return (db.scalar(select(Department.id).where(Department.name == name)) is not None
            or db.scalar(select(W.id).where(W.assignee == name).limit(1)) is not None)


def raw_figures(db: Session, f: Filters, now: datetime) -> dict[str, Any]:
    """The figures counted from the work_orders and calls rows (exact; slow for long periods)."""
    return {"calls": call_figures(db, f, now), "orders": order_figures(db, f),
            "handling": {**handling_figures(db, f), "p90_exact": True}, "satisfaction": satisfaction_figures(db, f),
            "categories": category_counts(db, f), "trend": trend(db, f)}
