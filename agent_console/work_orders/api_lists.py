"""The four lists (报告单, 督办单, 核查单, 回访单; rules in ``work_orders.lists``) as JSON for the /orders page and as
CSV or XLSX exports. Each list says its rule and who may act; a role that may not see a list gets 403.

The report covers orders received in a period (the court's days, default the last 30); the others are the orders
as they stand now. Exports mask phone, case and ID numbers for every role but admin (as the dashboard's do).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agent_console.dashboard import export
from agent_console.deps import CONSOLE_ROLES, get_db, require_role
from agent_console.models import User
from agent_console.pii import mask_text, sees_clear
from agent_console.work_orders.api_common import ctx_of, order_json, overdue_condition
from work_orders import lists
from work_orders.models import WorkOrder
from work_orders.rules import STATE_NAMES
from work_orders.settings import CATEGORY_NAMES, CHANNEL_NAMES
from work_orders.store import WorkOrderContext

router = APIRouter(tags=["work orders"])
Kind = Literal["report", "supervision", "verification", "callbacks"]
MAX_ROWS = 5000
HEADER = ["工单编号", "列入原因", "渠道", "类别", "子类", "状态", "承办部门", "受理时间", "转办期限", "反馈期限",
          "应回电日期", "满意度", "重复来电", "重办次数", "来电号码", "案号", "摘要"]


def _meta(kind: str) -> dict[str, Any]:
    x = lists.LISTS[kind]
    return {"kind": x.kind, "title": x.title, "rule": x.rule, "actors": x.actors}


def _allowed(kind: str, user: User) -> None:
    if user.role not in lists.LISTS[kind].viewers:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"无权查看{lists.LISTS[kind].title}")


def _period(ctx: WorkOrderContext, since: date | None, until: date | None) -> tuple[date, date]:
    today = ctx.calendar.local_date(ctx.now())
    until = until or today
    since = since or until - timedelta(days=29)
    if since > until:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "开始日期不能晚于结束日期")
    return since, until


def _rows(db: Session, ctx: WorkOrderContext, kind: str, since: date, until: date, limit: int
          ) -> tuple[int, list[tuple[WorkOrder, list[str]]]]:
    now = ctx.now()
    today = ctx.calendar.local_date(now)
    late = overdue_condition(now)
    cond = lists.conditions(kind, now=now, today=today, settings=ctx.settings, overdue=late)
    q = select(WorkOrder).where(cond)
    if kind == "report":
        tz = ctx.calendar.tz
        q = q.where(WorkOrder.created_at >= datetime.combine(since, time(0), tz),
                    WorkOrder.created_at < datetime.combine(until + timedelta(days=1), time(0), tz))
    total = db.scalar(select(func.count()).select_from(q.subquery())) or 0
    order = (WorkOrder.created_at.desc(),) if kind == "report" else (WorkOrder.created_at,)
    late_ids = set(db.scalars(select(WorkOrder.id).where(cond, late))) if kind == "supervision" else set()
    rows = []
    for o in db.scalars(q.order_by(*order, WorkOrder.id).limit(limit)):
        rows.append((o, lists.reasons(kind, o, now=now, today=today, settings=ctx.settings, overdue=o.id in late_ids)))
    return total, rows


@router.get("/api/work_orders/lists", summary="The four lists (报告单, 督办单, 核查单, 回访单) this user may see")
def order_lists(user: User = Depends(require_role(*CONSOLE_ROLES))) -> list[dict[str, Any]]:
    return [_meta(k) for k, x in lists.LISTS.items() if user.role in x.viewers]


@router.get("/api/work_orders/lists/{kind}", summary="One list: its rule, who may act, its orders with the reasons")
def order_list(kind: Kind, request: Request, response: Response, since: date | None = None,
               until: date | None = None, limit: int = Query(200, ge=1, le=MAX_ROWS), db: Session = Depends(get_db),
               user: User = Depends(require_role(*CONSOLE_ROLES))) -> dict[str, Any]:
    _allowed(kind, user)
    ctx = ctx_of(request)
    since, until = _period(ctx, since, until)
    total, rows = _rows(db, ctx, kind, since, until, limit)
    response.headers["X-Total-Count"] = str(total)
    period = {"since": since.isoformat(), "until": until.isoformat()} if kind == "report" else None
    return _meta(kind) | {"period": period, "total": total,
                          "orders": [order_json(request, o, user, full=False) | {"reasons": r} for o, r in rows]}


@router.get("/api/work_orders/lists/{kind}/export", summary="One list as CSV (UTF-8 with BOM) or XLSX")
def export_list(kind: Kind, request: Request, format: Literal["csv", "xlsx"] = Query("csv"),
                since: date | None = None, until: date | None = None, db: Session = Depends(get_db),
                user: User = Depends(require_role(*CONSOLE_ROLES))) -> Response:
    _allowed(kind, user)
    ctx = ctx_of(request)
    since, until = _period(ctx, since, until)
    _, rows = _rows(db, ctx, kind, since, until, MAX_ROWS)
    show = (lambda t: t) if sees_clear(user.role) else mask_text
    tz = ctx.calendar.tz

    def local(t: datetime | None) -> str:
        return t.astimezone(tz).strftime("%Y-%m-%d %H:%M") if t else ""

    table = [[o.number, "；".join(r), CHANNEL_NAMES.get(o.channel, o.channel), CATEGORY_NAMES.get(o.category, ""),
              o.subcategory, STATE_NAMES.get(o.status, o.status), o.assignee or "", local(o.created_at),
              local(o.dispatch_due), local(o.feedback_due), o.callback_due.isoformat() if o.callback_due else "",
              o.rating if o.rating is not None else "", o.repeat_count or 0, o.reopen_count or 0,
              show(o.citizen_phone or ""), show(o.case_number or ""), show(o.summary or o.content or "")]
             for o, r in rows]
    meta = lists.LISTS[kind]
    today = ctx.calendar.local_date(ctx.now())
    title = f"{meta.title}（{since}至{until}）" if kind == "report" else f"{meta.title}（{today}）"
    name = f"{kind}-{today.isoformat()}.{format}"
    if format == "csv":
        body, media = export.figures_csv([(title, HEADER, table)]), "text/csv; charset=utf-8"
    else:
        body = export.xlsx([(meta.title, HEADER, table)])
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})
