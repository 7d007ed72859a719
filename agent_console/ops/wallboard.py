"""The supervisor wallboard: ``GET /api/wallboard`` (supervisors, admins) and the page ``/wallboard``.

Live figures come from the hub's live state; answered/abandoned today are counted from the stored events
(so a restart does not reset them): answered = bridged to an operator, abandoned = hung up while queued.
``dead_letters``: events of each worker the hub refused, from the dead-letter files in the spool (an alert on the
page until an admin has dealt with them, as `hotline doctor` warns).
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_console.deps import MSG_FORBIDDEN, get_db, optional_user, require_role
from agent_console.models import CallEventRecord, User
from agent_console.pages import _page
from ivr.contract import dead_letter_count
from work_orders.calendar import WorkCalendar

router = APIRouter()
WALLBOARD_ROLES = ("supervisor", "admin")


def today_counts(db: Session, calendar: WorkCalendar, now: datetime) -> dict[str, int]:
    day = calendar.local_date(now)
    start = datetime.combine(day, time(0), calendar.tz)
    rows = db.execute(select(CallEventRecord.call_id, CallEventRecord.type, CallEventRecord.payload)
                      .where(CallEventRecord.ts >= start,
                             CallEventRecord.type.in_(("queue_joined", "queue_left", "bridge_update", "call_ended")))
                      .order_by(CallEventRecord.ts, CallEventRecord.received_at)).all()
    queued: set[str] = set()
    answered: set[str] = set()
    abandoned: set[str] = set()
    left: set[str] = set()
    for call_id, type_, payload in rows:
        if type_ == "queue_joined":
            queued.add(call_id)
            left.discard(call_id)
        elif type_ == "bridge_update" and payload.get("state") == "connected":
            answered.add(call_id)
        elif type_ == "queue_left":
            left.add(call_id)
            if payload.get("outcome") == "hangup":
                abandoned.add(call_id)
        elif type_ == "call_ended" and call_id in queued and call_id not in left and call_id not in answered:
            abandoned.add(call_id)
    return {"queued_today": len(queued), "answered_today": len(answered), "abandoned_today": len(abandoned - answered)}


@router.get("/api/wallboard", summary="Live figures for supervisors")
def wallboard(request: Request, db: Session = Depends(get_db),
              user: User = Depends(require_role(*WALLBOARD_ROLES))) -> dict[str, Any]:
    hub = request.app.state.ops
    calendar = request.app.state.work_orders.calendar  # the court's days, as the work orders count them
    data = hub.wallboard()
    data.update(today_counts(db, calendar, datetime.fromtimestamp(hub.clock(), calendar.tz)))
    spool = request.app.state.config.spool_dir
    data["dead_letters"] = dead_letter_count(spool) if spool is not None and spool.is_dir() else {}
    return data


@router.get("/wallboard", response_class=HTMLResponse, include_in_schema=False)
def wallboard_page(user: User | None = Depends(optional_user)) -> Response:
    if user is None:
        return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    if user.role not in WALLBOARD_ROLES:
        return HTMLResponse(f"<!doctype html><meta charset=utf-8><p>{MSG_FORBIDDEN}</p>", status.HTTP_403_FORBIDDEN)
    return HTMLResponse(_page("wallboard.html"), headers={"Cache-Control": "no-store"})
