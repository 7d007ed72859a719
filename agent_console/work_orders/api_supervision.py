"""督办 and alerts: the supervisors' list of overdue orders, pending extensions and reopened orders; each user's
notices (reminders, escalations, moves); ``/api/inbox``, a handler's team's orders."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from sqlalchemy import false, select
from sqlalchemy.orm import Session

from agent_console.deps import get_db, require_role
from agent_console.models import User
from agent_console.work_orders.api_common import (
    ALL_ROLES,
    SUPERVISING,
    ctx_of,
    order_json,
    overdue_condition,
)
from agent_console.work_orders.views import notice_out
from work_orders.models import WorkOrder, WorkOrderNotice

router = APIRouter(tags=["work orders"])


@router.get("/api/work_orders/supervision", summary="督办: overdue orders, pending extensions, reopened orders, alerts")
def supervision(request: Request, db: Session = Depends(get_db),
                user: User = Depends(require_role(*SUPERVISING))) -> dict[str, Any]:
    ctx = ctx_of(request)
    now = ctx.now()
    overdue = db.scalars(select(WorkOrder).where(overdue_condition(now))
                         .order_by(WorkOrder.feedback_due, WorkOrder.dispatch_due).limit(500))
    ext = db.scalars(select(WorkOrder).where(WorkOrder.extension_requested.is_not(None),
                                             WorkOrder.status.in_(("dispatched", "in_progress"))).limit(500))
    reopened = db.scalars(select(WorkOrder).where(WorkOrder.status == "reopened").limit(500))
    alerts = _notices(db, user, unread=True, limit=200)
    return {"now": now.isoformat(),
            "overdue": [order_json(request, o, user, full=False) for o in overdue],
            "extensions": [order_json(request, o, user, full=False) for o in ext],
            "reopened": [order_json(request, o, user, full=False) for o in reopened],
            "alerts": alerts}


def _notice_filter(user: User):
    if user.role == "handler":
        if not user.department:
            return false()
        return (WorkOrderNotice.audience == "assignee") & (WorkOrderNotice.team == user.department)
    if user.role == "operator":
        return WorkOrderNotice.audience == "callback"
    if user.role == "supervisor":
        return WorkOrderNotice.audience.in_(("supervisor", "callback"))
    return WorkOrderNotice.id.is_not(None)  # admin: everything


def _notices(db: Session, user: User, *, unread: bool, limit: int) -> list[dict[str, Any]]:
    q = select(WorkOrderNotice, WorkOrder.number).join(WorkOrder, WorkOrder.id == WorkOrderNotice.order_id) \
        .where(_notice_filter(user))
    if unread:
        q = q.where(WorkOrderNotice.read_at.is_(None))
    rows = db.execute(q.order_by(WorkOrderNotice.created_at.desc(), WorkOrderNotice.id.desc()).limit(limit)).all()
    return [notice_out(n, number, user.role) for n, number in rows]


@router.get("/api/work_orders/notices", summary="Alerts for the logged-in user (reminders, escalations, moves)")
def notices(unread: bool = True, limit: int = Query(100, ge=1, le=500), db: Session = Depends(get_db),
            user: User = Depends(require_role(*ALL_ROLES))) -> list[dict[str, Any]]:
    return _notices(db, user, unread=unread, limit=limit)


@router.post("/api/work_orders/notices/{notice_id}/read", summary="Mark an alert read")
def read_notice(notice_id: int, request: Request, db: Session = Depends(get_db),
                user: User = Depends(require_role(*ALL_ROLES))) -> dict[str, Any]:
    n = db.scalar(select(WorkOrderNotice).where(WorkOrderNotice.id == notice_id, _notice_filter(user)))
    if n is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "未找到该提醒")
    if n.read_at is None:
        n.read_at, n.read_by = ctx_of(request).now(), user.username
        db.commit()
    return {"id": n.id, "read_at": n.read_at.isoformat()}



# ============================================================================================ handlers' inbox
@router.get("/api/inbox", summary="A handler's team's orders: open ones first, then the latest answered/closed")
def inbox(request: Request, include_done: bool = False, limit: int = Query(100, ge=1, le=500),
          db: Session = Depends(get_db), user: User = Depends(require_role("handler", *SUPERVISING))) -> dict[str, Any]:
    team = user.department
    if user.role != "handler":
        team = request.query_params.get("team") or team
    if not team:
        return {"team": None, "orders": [], "notices": []}
    states = ("dispatched", "in_progress") + (("answered", "callback", "closed", "reopened") if include_done else ())
    rows = db.scalars(select(WorkOrder).where(WorkOrder.assignee == team, WorkOrder.status.in_(states))
                      .order_by(WorkOrder.feedback_due, WorkOrder.id).limit(limit))
    return {"team": team, "orders": [order_json(request, o, user, full=False) for o in rows],
            "notices": _notices(db, user, unread=True, limit=100) if user.role == "handler" else []}


# ============================================================================================ departments
