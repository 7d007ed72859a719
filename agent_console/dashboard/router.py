"""``GET /api/dashboard``, ``GET /api/dashboard/export`` (supervisors, admins) and the page ``/dashboard``.

Query parameters: ``from``/``to`` (YYYY-MM-DD, the court's days, both included; default the last 30 days),
``category`` (one of the six), ``department`` (an assignee). A bad one answers 422 with a Chinese ``detail``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_console.dashboard import export
from agent_console.dashboard.figures import figures
from agent_console.dashboard.filters import FilterError, Filters, parse_filters
from agent_console.dashboard.queries import department_exists, order_figures
from agent_console.dashboard.topics import hot_topics
from agent_console.deps import MSG_FORBIDDEN, get_db, optional_user, require_role
from agent_console.kb.unanswered import MatchCache
from agent_console.models import User
from agent_console.pages import _page
from work_orders.models import Department

router = APIRouter(tags=["dashboard"])
DASHBOARD_ROLES = ("supervisor", "admin")
MEDIA = {"csv": "text/csv; charset=utf-8",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
_match_cache = MatchCache()


def now_of(request: Request) -> datetime:
    """The hub's clock (tests may drive it), as an aware datetime."""
    return datetime.fromtimestamp(request.app.state.ops.clock(), UTC)


def filters_of(request: Request, db: Session, from_: str | None, to: str | None, category: str | None,
               department: str | None) -> Filters:
    tz = ZoneInfo(request.app.state.config.timezone)
    try:
        f = parse_filters(from_, to, category, department, today=now_of(request).astimezone(tz).date(), tz=tz)
        if f.department is not None and not department_exists(db, f.department):
            raise FilterError(f"未知的承办部门“{f.department}”")
    except FilterError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, e.message) from None
    return f


def page_data(request: Request, db: Session, f: Filters, user: User) -> dict[str, Any]:
    data = figures(db, f, now_of(request))
    matcher = request.app.state.kb_matcher.current()
    data["hot_topics"] = hot_topics(db, f, matcher, role=user.role, cache=_match_cache)
    data["departments"] = list(db.scalars(select(Department.name).where(Department.active.is_(True))
                                          .order_by(Department.name)))
    return data


FROM = Query(None, alias="from", description="first day (YYYY-MM-DD, the court's time zone)")
TO = Query(None, description="last day, included (YYYY-MM-DD)")
CATEGORY = Query(None, description="consult, query, urge, contact_judge, complaint or suggestion")
DEPARTMENT = Query(None, description="assignee: a department or a judge's team")


@router.get("/api/dashboard", summary="The supervisors' figures for a period, category and department")
def dashboard(request: Request, from_: str | None = FROM, to: str | None = TO, category: str | None = CATEGORY,
              department: str | None = DEPARTMENT, db: Session = Depends(get_db),
              user: User = Depends(require_role(*DASHBOARD_ROLES))) -> dict[str, Any]:
    return page_data(request, db, filters_of(request, db, from_, to, category, department), user)


@router.get("/api/dashboard/export", summary="The dashboard's figures or its order list as CSV or XLSX")
def dashboard_export(request: Request, format: Literal["csv", "xlsx"] = Query("csv"),
                     kind: Literal["figures", "orders"] = Query("figures"), from_: str | None = FROM,
                     to: str | None = TO, category: str | None = CATEGORY, department: str | None = DEPARTMENT,
                     db: Session = Depends(get_db), user: User = Depends(require_role(*DASHBOARD_ROLES))) -> Response:
    f = filters_of(request, db, from_, to, category, department)
    name = f"dashboard-{kind}-{f.start:%Y%m%d}-{f.end:%Y%m%d}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    if kind == "figures":
        tables = export.figure_tables(page_data(request, db, f, user))
        body = export.figures_csv(tables) if format == "csv" else export.xlsx(tables)
        return Response(body, media_type=MEDIA[format], headers=headers)
    n = order_figures(db, f)["received"]
    if n > export.MAX_ORDER_ROWS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"该时间段共有{n}件工单，超过一次导出的上限{export.MAX_ORDER_ROWS}件，请缩小时间段")
    if format == "csv":
        sm = request.app.state.sessionmaker

        def stream() -> Any:  # its own session: the request's closes when the response starts
            with sm() as s:
                yield from export.orders_csv(export.order_rows(s, f, user.role))

        return StreamingResponse(stream(), media_type=MEDIA[format], headers=headers)
    body = export.xlsx([("工单明细", export.ORDER_HEADER, list(export.order_rows(db, f, user.role)))])
    return Response(body, media_type=MEDIA[format], headers=headers)


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard_page(user: User | None = Depends(optional_user)) -> Response:
    if user is None:
        return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    if user.role not in DASHBOARD_ROLES:
        return HTMLResponse(f"<!doctype html><meta charset=utf-8><p>{MSG_FORBIDDEN}</p>", status.HTTP_403_FORBIDDEN)
    return HTMLResponse(_page("dashboard.html"), headers={"Cache-Control": "no-store"})
