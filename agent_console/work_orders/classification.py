"""Suggested classification in the hub: what ``work_orders.classify`` suggests for an order's text, kept with the
order so that its accuracy can be counted.

Every suggestion that reaches an order is stored as one history line (action ``suggest``) whose ``changes`` are
``{"category": [suggested, filed], "subcategory": [...], "tags": [...]}`` — for an operator's order the filed
values are the operator's choice (equal: accepted; different: corrected), for a hub-filed order the values the
hub applied. :func:`accuracy` counts them.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from work_orders import classify
from work_orders.embedding import EmbeddingError
from work_orders.models import WorkOrder, WorkOrderHistory
from work_orders.rules import Actor
from work_orders.settings import CATEGORY_NAMES
from work_orders.store import WorkOrderContext

log = logging.getLogger(__name__)
ACTION = "suggest"


def suggest(ctx: WorkOrderContext, text: str, category: str | None = None) -> classify.Suggestion | None:
    """The suggestion for ``text`` (within ``category`` when it is already known), or None when suggestions are
    off, the text is empty or the model cannot be used (logged: filing goes on without)."""
    if not ctx.settings.suggest_classification or not (text or "").strip():
        return None
    try:
        return classify.for_taxonomy(ctx.taxonomy()).classify(text.strip()[:5000], category)
    except (EmbeddingError, ValueError, OSError):
        log.exception("work orders: no classification suggestion")
        return None


def merged_tags(tags: list[str], suggestion: classify.Suggestion | None) -> list[str]:
    return list(dict.fromkeys([*tags, *(suggestion.tags if suggestion else [])]))


def record(db: Session, order: WorkOrder, suggested: dict[str, Any], *, actor: Actor, at: datetime) -> None:
    """The suggestion beside what the order was filed with (one history line; the caller commits)."""
    tags = [str(t) for t in suggested.get("tags") or []]
    filed_tags = list(order.tags or [])
    changes = {"category": [suggested.get("category"), order.category],
               "subcategory": [suggested.get("subcategory") or "", order.subcategory or ""],
               "tags": [tags, filed_tags]}
    confidence = float(suggested.get("confidence") or 0.0)
    what = CATEGORY_NAMES.get(str(suggested.get("category")), str(suggested.get("category")))
    sub = suggested.get("subcategory") or ""
    same = changes["category"][0] == changes["category"][1] and changes["subcategory"][0] == changes["subcategory"][1]
    note = (f"系统建议：{what}{'／' + sub if sub else ''}（置信度{confidence:.0%}）"
            + ("，已采纳" if same else "，已更正"))
    db.add(WorkOrderHistory(order_id=order.id, at=at, actor=actor.name[:64], role=actor.role, action=ACTION,
                            status_from=order.status, status_to=order.status, note=note, changes=changes))
    db.flush()


def accuracy(db: Session, since: datetime | None = None, until: datetime | None = None) -> dict[str, Any]:
    """Share of suggestions whose category / subcategory the order kept (operators' orders and all)."""
    q = select(WorkOrderHistory.role, WorkOrderHistory.changes).where(WorkOrderHistory.action == ACTION)
    if since is not None:
        q = q.where(WorkOrderHistory.at >= since)
    if until is not None:
        q = q.where(WorkOrderHistory.at < until)
    counts = {"all": [0, 0, 0], "staff": [0, 0, 0]}
    for role, ch in db.execute(q):
        cat = ch.get("category") or [None, None]
        sub = ch.get("subcategory") or ["", ""]
        for key in ("all", "staff") if role != "system" else ("all",):
            counts[key][0] += 1
            counts[key][1] += cat[0] == cat[1]
            counts[key][2] += cat[0] == cat[1] and sub[0] == sub[1]
    return {k: {"suggested": n, "category_kept": c, "subcategory_kept": s,
                "category_accuracy": round(c / n, 4) if n else None,
                "subcategory_accuracy": round(s / n, 4) if n else None} for k, (n, c, s) in counts.items()}
