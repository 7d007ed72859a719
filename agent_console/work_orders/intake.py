"""Intake from other channels: ``POST /api/intake`` for other systems (bearer ``work_orders.intake_token``), the
public web form ``/submit`` (网上诉求, no login, ``POST /api/submit``) with a per-address rate limit instead of a
captcha, and ``/track/{number}`` where citizens follow an order's progress without any personal data.

Order numbers are sequential per day, so a number alone shows nothing: tracking also asks for the last four digits of
the phone the order was filed with (the caller ID for orders from calls, the form's phone for the web), as parcel
and court service sites do. Orders filed before this work the same way; an order without a phone is not tracked
publicly (the page says to call 12368). Wrong digits count against the order: ``TRACK_FAILS_PER_HOUR`` in an hour
lock its public tracking for the rest of that hour, so the 10,000 possibilities cannot be walked through.

The rate limit is kept in memory per hub process (a restart forgets, which only lets someone in sooner); a
hidden honeypot field catches simple form robots. An address is the TCP peer: behind a reverse proxy, run the
hub with uvicorn's ``--forwarded-allow-ips`` so the peer is the citizen's address.
"""

from __future__ import annotations

import hmac
import html
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from agent_console.deps import get_db
from agent_console.guards.shared_windows import SharedRateLimit, shared_windows
from agent_console.work_orders.api_common import CitizenFields, check_taxonomy, ctx_of
from agent_console.work_orders.errors import invalid
from agent_console.work_orders.service import create_order
from work_orders import taxonomy as tx
from work_orders.models import WorkOrder, WorkOrderHistory
from work_orders.numbering import parse_number
from work_orders.rules import STATE_NAMES, Actor
from work_orders.settings import CATEGORY_NAMES

router = APIRouter(tags=["intake"])
pages = APIRouter(include_in_schema=False)
MSG_TOO_MANY = "提交过于频繁，请{minutes}分钟后再试"
PUBLIC_STEPS = {"received": "已受理，等待转办", "dispatched": "已转承办部门办理", "in_progress": "承办部门办理中",
                "answered": "承办部门已反馈，等待回访", "callback": "回访中", "closed": "已办结",
                "reopened": "重新办理中"}


class RateLimit:
    """At most ``limit`` submissions per address in ``window_s`` (sliding window)."""

    def __init__(self, limit: int, window_s: float = 3600.0, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, address: str) -> float:
        """The seconds until ``address`` may try again (0: now), counting nothing."""
        now = self.clock()
        with self._lock:
            q = self._hits.get(address)
            if not q:
                return 0.0
            while q and now - q[0] > self.window_s:
                q.popleft()
            return self.window_s - (now - q[0]) if len(q) >= self.limit else 0.0

    def take(self, address: str) -> float:
        """Count a submission; 0 when allowed, else the seconds until the next one is."""
        now = self.clock()
        with self._lock:
            q = self._hits.setdefault(address, deque())
            while q and now - q[0] > self.window_s:
                q.popleft()
            if len(q) >= self.limit:
                return self.window_s - (now - q[0])
            q.append(now)
            if len(self._hits) > 50_000:
                for k in [k for k, v in self._hits.items() if not v or now - v[-1] > self.window_s]:
                    del self._hits[k]
            return 0.0


class IntakeIn(CitizenFields):
    channel: Literal["api", "web", "letter", "walk_in"] = "api"
    external_id: str = Field("", max_length=100, description="the other system's id: the same id files once")


class SubmitIn(CitizenFields):
    citizen_name: str = Field(min_length=1, max_length=64)
    citizen_phone: str = Field(min_length=7, max_length=20, pattern=r"^[0-9+\- ]+$")
    website: str = Field("", max_length=200, description="honeypot: people leave it empty")


def _rate_limit(state: Any, name: str, limit: int, window_s: float = 3600.0) -> RateLimit | SharedRateLimit:
    """Counted across the hubs when they share a Redis, else in this hub's memory."""
    windows = shared_windows(state)
    return SharedRateLimit(windows, name, limit, window_s) if windows else RateLimit(limit, window_s)


def _limiter(request: Request) -> RateLimit | SharedRateLimit:
    app = request.app
    lim = getattr(app.state, "intake_limit", None)
    if lim is None:
        lim = app.state.intake_limit = _rate_limit(app.state, "submit", ctx_of(request).settings.web_form_per_hour)
    return lim


def _receipt(order: WorkOrder, created: bool = True) -> dict[str, Any]:
    return {"number": order.number, "status": order.status, "status_name": STATE_NAMES[order.status],
            "track_url": f"/track/{order.number}", "created": created}


def _file(db: Session, request: Request, body: CitizenFields, *, channel: str, actor: Actor,
          auto_key: str | None = None) -> WorkOrder | JSONResponse:
    ctx = ctx_of(request)
    try:
        subcategory, tags = check_taxonomy(ctx, body)
    except tx.Invalid as e:
        return invalid([{"field": e.field, "message": e.message}])
    order = create_order(db, ctx, now=ctx.now(), actor=actor, channel=channel, category=body.category,
                         subcategory=subcategory, tags=tags, citizen_name=body.citizen_name,
                         citizen_phone=body.citizen_phone, citizen_id_number=body.citizen_id_number,
                         case_number=body.case_number, content=body.content, auto_key=auto_key,
                         created_by=actor.name[:64])
    db.commit()
    return order


def require_intake_token(request: Request, authorization: str = Header("", include_in_schema=False)) -> None:
    """401 before anything else is looked at (the intake API is off while no token is set)."""
    token = ctx_of(request).settings.intake_token
    given = authorization.removeprefix("Bearer ").strip()
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "接口令牌无效", headers={"WWW-Authenticate": "Bearer"})


@router.post("/api/intake", status_code=status.HTTP_201_CREATED, dependencies=[Depends(require_intake_token)],
             summary="File an order from another system (bearer intake token); the same external_id files once")
def intake(body: IntakeIn, request: Request, db: Session = Depends(get_db)) -> Any:
    key = f"api:{body.external_id}" if body.external_id else None
    if key is not None:
        found = db.scalar(select(WorkOrder).where(WorkOrder.auto_key == key))
        if found is not None:
            return JSONResponse(_receipt(found, created=False), status_code=200)
    try:
        result = _file(db, request, body, channel=body.channel, actor=Actor("外部系统", "system"), auto_key=key)
    except IntegrityError:  # the same external id, filed concurrently
        db.rollback()
        found = db.scalar(select(WorkOrder).where(WorkOrder.auto_key == key))
        return JSONResponse(_receipt(found, created=False), status_code=200)
    return result if isinstance(result, JSONResponse) else _receipt(result)


@router.post("/api/submit", status_code=status.HTTP_201_CREATED, summary="网上诉求: the public form (no login)")
def submit(body: SubmitIn, request: Request, db: Session = Depends(get_db)) -> Any:
    address = request.client.host if request.client else "?"
    wait = _limiter(request).take(address)
    if wait > 0:
        minutes = max(1, int(wait // 60) + 1)
        return JSONResponse({"detail": MSG_TOO_MANY.format(minutes=minutes), "code": "rate_limited"},
                            status_code=429, headers={"Retry-After": str(int(wait) + 1)})
    if body.website:  # a robot filled the hidden field: answer like a success, file nothing
        return {"number": "", "status": "received", "status_name": STATE_NAMES["received"], "track_url": "",
                "created": False}
    result = _file(db, request, body, channel="web", actor=Actor("网上诉求", "system"))
    return result if isinstance(result, JSONResponse) else _receipt(result)


TRACK_FAILS_PER_HOUR = 5
MSG_TRACK_MISS = "未找到该工单，或手机号后四位不符，请核对后再查"
MSG_TRACK_LAST4 = "请输入登记的联系电话（手机号）后四位"
MSG_TRACK_NUMBER = "工单编号格式不对，请核对后再查"
MSG_TRACK_LOCKED = "该工单查询失败次数过多，请1小时后再试，或致电12368查询"


def phone_last4(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    return digits[-4:] if len(digits) >= 4 else ""


def track_info(db: Session, number: str, last4: str) -> dict[str, Any] | None:
    """What the public may see of an order (no names, numbers, texts or assignee), given its number and the last
    four digits of its phone; None when either does not match (the same answer: no hint which was wrong)."""
    if parse_number(number) is None or not (len(last4) == 4 and last4.isdigit()):
        return None
    order = db.scalar(select(WorkOrder).where(WorkOrder.number == number))
    if order is None:
        return None
    if not hmac.compare_digest(phone_last4(order.citizen_phone or "").encode() or b"-", last4.encode()):
        return None
    steps = db.execute(select(WorkOrderHistory.at, WorkOrderHistory.status_to, WorkOrderHistory.status_from)
                       .where(WorkOrderHistory.order_id == order.id).order_by(WorkOrderHistory.at,
                                                                               WorkOrderHistory.id)).all()
    seen = [{"at": at.isoformat(), "status": to, "status_name": STATE_NAMES.get(to, to)}
            for at, to, frm in steps if to != frm]
    return {"number": order.number, "category_name": CATEGORY_NAMES.get(order.category, order.category),
            "status": order.status, "status_name": PUBLIC_STEPS.get(order.status, order.status),
            "received_at": order.created_at.isoformat(), "updated_at": order.updated_at.isoformat(),
            "steps": seen}


MSG_TRACK_TOO_MANY = "查询过于频繁，请稍后再试"


def track_throttled(request: Request) -> JSONResponse | None:
    """Order numbers are sequential per day: lookups per address and minute are limited (``hub.track_per_minute``)
    so nobody walks through a day's orders. A 429 in Chinese, or None to go on."""
    app = request.app
    lim = getattr(app.state, "track_limit", None)
    if lim is None:
        lim = app.state.track_limit = _rate_limit(app.state, "track", app.state.config.track_per_minute, 60.0)
    wait = lim.take(request.client.host if request.client else "-")
    if wait <= 0:
        return None
    return JSONResponse({"detail": MSG_TRACK_TOO_MANY, "code": "rate_limited"}, status_code=429,
                        headers={"Retry-After": str(int(wait) + 1)})


def _fails(request: Request) -> RateLimit | SharedRateLimit:
    app = request.app
    lim = getattr(app.state, "track_fails", None)
    if lim is None:
        lim = app.state.track_fails = _rate_limit(app.state, "track_fail", TRACK_FAILS_PER_HOUR)
    return lim


def track_lookup(request: Request, db: Session, number: str, last4: str) -> tuple[int, dict[str, Any] | str]:
    """(200, the public view) or (status, a Chinese reason): 400 no digits, 404 no match, 429 locked."""
    if not (len(last4) == 4 and last4.isdigit()):
        return 400, MSG_TRACK_LAST4
    key = number[:40]
    if _fails(request).wait(key) > 0:
        return 429, MSG_TRACK_LOCKED
    info = track_info(db, number, last4)
    if info is None:
        _fails(request).take(key)
        return 404, MSG_TRACK_MISS
    return 200, info


@router.get("/api/track/{number}", summary="Public progress of an order (no personal data); needs the last four "
            "digits of the order's phone")
def track_json(number: str, request: Request, last4: str = "", db: Session = Depends(get_db)) -> Any:
    if (refused := track_throttled(request)) is not None:
        return refused
    code, info = track_lookup(request, db, number, last4)
    if code != 200:
        return JSONResponse({"detail": info}, status_code=code)
    return info


@cache
def _page(name: str) -> str:
    return resources.files("agent_console").joinpath("static", name).read_text(encoding="utf-8")


@pages.get("/submit", response_class=HTMLResponse)
def submit_page() -> HTMLResponse:
    return HTMLResponse(_page("submit.html"))


def _track_form(number: str, message: str = "") -> str:
    e = html.escape
    miss = f"<p class=\"miss\" id=\"miss\">{e(message)}</p>" if message else ""
    return (f"{miss}<form id=\"lookup\" method=\"get\" action=\"/track\">"
            f"<p><label for=\"number\">工单编号</label> <input id=\"number\" name=\"number\" maxlength=\"40\" "
            f"required value=\"{e(number[:40])}\"></p>"
            "<p><label for=\"last4\">联系电话后四位</label> <input id=\"last4\" name=\"last4\" maxlength=\"4\" "
            "pattern=\"[0-9]{4}\" inputmode=\"numeric\" autocomplete=\"off\" required></p>"
            "<p><button id=\"go\" type=\"submit\">查询</button></p></form>"
            "<p>请输入提交诉求或来电时登记的电话号码的后四位。</p>")


@pages.get("/track", response_class=HTMLResponse)
def track_form_page(request: Request, number: str = "", last4: str = "",
                    db: Session = Depends(get_db)) -> HTMLResponse:
    return track_page(number, request, last4, db)


@pages.get("/track/{number}", response_class=HTMLResponse)
def track_page(number: str, request: Request, last4: str = "", db: Session = Depends(get_db)) -> HTMLResponse:
    if not last4:  # no lookup yet: the form, counted against nothing
        bad = bool(number) and parse_number(number) is None
        return HTMLResponse(_page("track.html").replace("{{body}}", _track_form(number, MSG_TRACK_NUMBER if bad
                                                                                else "")),
                            status_code=404 if bad else 200, headers={"Cache-Control": "no-store"})
    if (refused := track_throttled(request)) is not None:
        return HTMLResponse(f"<p>{MSG_TRACK_TOO_MANY}</p>", status_code=429, headers=dict(refused.headers))
    code, info = track_lookup(request, db, number, last4)
    ctx = ctx_of(request)
    e = html.escape
    if code != 200:
        body = _track_form(number, str(info))
    else:
        def local(iso: str) -> str:
            return datetime.fromisoformat(iso).astimezone(ctx.calendar.tz).strftime("%Y-%m-%d %H:%M")

        rows = "".join(f"<li><span>{e(local(s['at']))}</span> {e(s['status_name'])}</li>" for s in info["steps"])
        body = (f"<p>工单编号：<b id=\"number\">{e(info['number'])}</b></p>"
                f"<p>类别：{e(info['category_name'])}</p>"
                f"<p>受理时间：{e(local(info['received_at']))}</p>"
                f"<p>当前进度：<b id=\"status\">{e(info['status_name'])}</b></p><ol id=\"steps\">{rows}</ol>")
        code = 200
    return HTMLResponse(_page("track.html").replace("{{body}}", body), status_code=code,
                        headers={"Cache-Control": "no-store"})
