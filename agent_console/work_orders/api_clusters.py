"""类案 analysis for supervisors (``work_orders.clusters``): ``GET /api/work_orders/clusters`` (orders received in a
period, default the last 4 weeks, grouped by topic with weekly counts, trend and examples), the weekly export
``GET /api/work_orders/clusters/export?format=csv|xlsx``, and ``POST /api/work_orders/known_issues`` to mark a cluster
as a known issue with a note (the policy it led to). Each order's vector is computed once and kept
(``work_order_vectors``)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_console.dashboard import export
from agent_console.deps import get_db, require_role
from agent_console.models import User
from agent_console.pii import mask_text, sees_clear
from agent_console.work_orders.api_common import Body, ctx_of
from work_orders import clusters
from work_orders.embedding import MODEL_NAME, EmbeddingError, embed
from work_orders.models import KnownIssue, WorkOrder, WorkOrderVector
from work_orders.settings import CATEGORY_NAMES
from work_orders.store import WorkOrderContext

router = APIRouter(tags=["work orders"])
SUPERVISING = ("supervisor", "admin")
MAX_ORDERS = 3000


class KnownIssueIn(Body):
    order_ids: list[int] = Field(min_length=1, max_length=MAX_ORDERS, description="the cluster's orders")
    label: str = Field(min_length=1, max_length=200)
    note: str = Field(min_length=1, max_length=4000, description="what it led to (the policy, the fix)")


def order_text(o: WorkOrder) -> str:
    first = (o.summary or "").split("\n", 1)[0]
    if first.startswith("诉求：") and "未说明" not in first:
        return first[3:]
    return (o.content or "")[:500]


def vectors(db: Session, orders: list[WorkOrder]) -> np.ndarray:
    """The orders' vectors, embedding (and keeping) those not yet computed with the current model."""
    ids = [o.id for o in orders]
    kept = {r.order_id: r.vector for r in db.scalars(select(WorkOrderVector).where(
        WorkOrderVector.order_id.in_(ids), WorkOrderVector.model == MODEL_NAME))} if ids else {}
    missing = [o for o in orders if o.id not in kept]
    if missing:
        new = embed([order_text(o) for o in missing])
        for o, v in zip(missing, new, strict=True):
            kept[o.id] = v.astype(np.float32).tobytes()
            db.merge(WorkOrderVector(order_id=o.id, model=MODEL_NAME, vector=kept[o.id]))
        db.commit()
    return np.stack([np.frombuffer(kept[i], np.float32) for i in ids]) if ids else np.zeros((0, 1), np.float32)


def _period(ctx: WorkOrderContext, since: date | None, until: date | None) -> tuple[date, date]:
    until = until or ctx.calendar.local_date(ctx.now())
    since = since or clusters.week_of(until) - timedelta(days=21)
    if since > until:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "开始日期不能晚于结束日期")
    return since, until


def analyse(db: Session, ctx: WorkOrderContext, since: date, until: date, role: str) -> dict[str, Any]:
    tz = ctx.calendar.tz
    orders = list(db.scalars(select(WorkOrder).where(
        WorkOrder.created_at >= datetime.combine(since, time(0), tz),
        WorkOrder.created_at < datetime.combine(until + timedelta(days=1), time(0), tz))
        .order_by(WorkOrder.created_at, WorkOrder.id).limit(MAX_ORDERS)))
    try:
        vecs = vectors(db, orders)
    except EmbeddingError:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "语义模型暂时无法使用，无法进行类案分析") from None
    known = {k.id: k for k in db.scalars(select(KnownIssue))}
    marks = [(k.id, np.frombuffer(k.vector, np.float32)) for k in known.values()]
    found = clusters.topics([order_text(o) for o in orders], [ctx.calendar.local_date(o.created_at) for o in orders],
                            vecs, until=until, known=marks)
    show = (lambda t: t) if sees_clear(role) else mask_text
    out = []
    for t in found:
        cats: dict[str, int] = {}
        for i in t.members:
            name = CATEGORY_NAMES.get(orders[i].category, orders[i].category)
            cats[name] = cats.get(name, 0) + 1
        k = known.get(t.known) if t.known is not None else None
        out.append({"label": show(t.label), "size": t.size, "weeks": t.weeks, "trend": t.trend,
                    "categories": cats, "order_ids": [orders[i].id for i in t.members],
                    "examples": [{"id": orders[i].id, "number": orders[i].number, "text": show(order_text(orders[i]))}
                                 for i in t.examples],
                    "known": None if k is None else {"id": k.id, "label": k.label, "note": k.note}})
    return {"since": since.isoformat(), "until": until.isoformat(), "orders": len(orders), "clusters": out}


@router.get("/api/work_orders/clusters", summary="类案: orders of a period grouped by topic (counts, weekly trend, "
                                                 "examples, known issues)")
def order_clusters(request: Request, since: date | None = None, until: date | None = None,
                   db: Session = Depends(get_db), user: User = Depends(require_role(*SUPERVISING))) -> dict[str, Any]:
    ctx = ctx_of(request)
    since, until = _period(ctx, since, until)
    return analyse(db, ctx, since, until, user.role)


@router.get("/api/work_orders/clusters/export", summary="类案 by week as CSV (UTF-8 with BOM) or XLSX")
def export_clusters(request: Request, format: Literal["csv", "xlsx"] = Query("csv"), since: date | None = None,
                    until: date | None = None, db: Session = Depends(get_db),
                    user: User = Depends(require_role(*SUPERVISING))) -> Response:
    ctx = ctx_of(request)
    since, until = _period(ctx, since, until)
    data = analyse(db, ctx, since, until, user.role)
    weeks = sorted({w for c in data["clusters"] for w in c["weeks"]})
    header = ["类案", "件数", "趋势（末周比前一周）", "类别", "已知问题", "说明", *[f"{w}周" for w in weeks],
              "示例工单"]
    rows = [[c["label"], c["size"], c["trend"], "、".join(f"{k}{v}" for k, v in c["categories"].items()),
             c["known"]["label"] if c["known"] else "", c["known"]["note"] if c["known"] else "",
             *[c["weeks"].get(w, 0) for w in weeks], "、".join(e["number"] for e in c["examples"])]
            for c in data["clusters"]]
    title = f"类案分析（{since}至{until}）"
    if format == "csv":
        body, media = export.figures_csv([(title, header, rows)]), "text/csv; charset=utf-8"
    else:
        body, media = export.xlsx([("类案分析", header, rows)]), \
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="clusters-{until.isoformat()}.{format}"'})


@router.post("/api/work_orders/known_issues", status_code=status.HTTP_201_CREATED,
             summary="Mark a 类案 cluster as a known issue with a note; later clusters near it show as known")
def add_known_issue(body: KnownIssueIn, request: Request, db: Session = Depends(get_db),
                    user: User = Depends(require_role(*SUPERVISING))) -> dict[str, Any]:
    orders = list(db.scalars(select(WorkOrder).where(WorkOrder.id.in_(body.order_ids))))
    if not orders:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "未找到这些工单")
    try:
        vecs = vectors(db, orders)
    except EmbeddingError:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "语义模型暂时无法使用") from None
    total = vecs.sum(axis=0)
    n = float(np.linalg.norm(total))
    k = KnownIssue(label=body.label, note=body.note, vector=(total / n if n else total).astype(np.float32).tobytes(),
                   created_by=user.username, created_at=ctx_of(request).now())
    db.add(k)
    db.commit()
    return {"id": k.id, "label": k.label, "note": k.note, "created_by": k.created_by}
