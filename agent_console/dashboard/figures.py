"""The dashboard's figures for a period: from the day summaries of migration 0007 where they hold, else counted
from the rows (:mod:`agent_console.dashboard.queries`). Apart from both so that neither imports the other."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from agent_console.dashboard import summary
from agent_console.dashboard.filters import Filters
from agent_console.dashboard.queries import overdue_by_department, raw_figures


def figures(db: Session, f: Filters, now: datetime, *, source: str = "auto",
            exact_p90_max: int | None = None) -> dict[str, Any]:
    """Everything the page shows but the hot topics (see :mod:`agent_console.dashboard.topics`).

    ``source``: ``summary`` (the day summaries of migration 0007), ``orders`` (raw rows) or ``auto`` (the
    summaries where they hold for the period, see :func:`summary.usable`).
    """
    use = source == "summary" or (source == "auto" and summary.usable(db, f))
    if use:
        kw = {} if exact_p90_max is None else {"exact_p90_max": exact_p90_max}
        body = summary.summary_figures(db, f, now, **kw)
    else:
        body = raw_figures(db, f, now)
    return {"filters": f.as_dict(), "generated_at": now.astimezone(UTC).isoformat(),
            "source": "summary" if use else "orders", **body, "overdue": overdue_by_department(db, f, now)}
