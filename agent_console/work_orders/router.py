"""``/api/work_orders``: file, list, read (with history), one endpoint per move of ``work_orders.rules``,
attachments, notices, the 督办 list; ``/api/inbox`` for handlers; ``/api/departments``;
``/api/calls/{call_id}/work_order_draft`` for operators at wrap-up.

Refused moves answer 409 with the reason in Chinese and change nothing; malformed bodies 422 with Chinese field
errors (``agent_console.work_orders.errors``). What leaves for a browser is masked for roles that must not see
personal data; what is stored is not: a masked phone number or case number sent back from a draft is replaced by
the call's own.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, Response, UploadFile, status
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import Session

from agent_console.deps import CONSOLE_ROLES, get_db, require_role
from agent_console.models import (
    ROLES,
    Call,
    Department,
    User,
    WorkOrder,
    WorkOrderAttachment,
    WorkOrderHistory,
    WorkOrderNotice,
)
from agent_console.pii import mask_for
from agent_console.work_orders import classification, orders
from agent_console.work_orders.departments import DepartmentError, add_department, members_of, set_members
from agent_console.work_orders.errors import invalid
from agent_console.work_orders.orders import Conflict, WorkOrderContext
from agent_console.work_orders.service import (
    call_notes,
    call_transcript,
    create_order,
    draft_for_call,
    find_case_number,
    looks_masked,
)
from agent_console.work_orders.views import attachment_out, history_out, notice_out, order_out
from work_orders import taxonomy as tx
from work_orders.dial_plan import caller_number
from work_orders.rules import MOVES, STATES, Actor, Refused
from work_orders.settings import CATEGORIES

router = APIRouter(tags=["work orders"])
Category = Literal["consult", "query", "urge", "contact_judge", "complaint", "suggestion"]
StaffChannel = Literal["hotline", "walk_in", "letter"]
MSG_NO_CALL = "未找到该通话记录"
MSG_NO_ORDER = "未找到该工单"
SUPERVISING = ("supervisor", "admin")
ALL_ROLES = tuple(ROLES)
SAFE_INLINE = frozenset({"image/png", "image/jpeg", "image/gif", "application/pdf", "text/plain"})


def ctx_of(request: Request) -> WorkOrderContext:
    return request.app.state.work_orders


# ============================================================================================ bodies
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CitizenFields(_Body):
    category: Category
    subcategory: str = Field("", max_length=255)
    tags: list[str] = Field(default_factory=list, max_length=tx.MAX_TAGS_PER_ORDER)
    content: str = Field(min_length=1, max_length=5000)
    citizen_name: str = Field("", max_length=64)
    citizen_phone: str = Field("", max_length=64)
    citizen_id_number: str = Field("", max_length=32)
    case_number: str = Field("", max_length=64)

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        items = [t.strip() for t in v if t.strip()]
        if any(len(t) > tx.MAX_TAG for t in items):
            raise ValueError(f"每个标签不能超过{tx.MAX_TAG}个字")
        return items


class SuggestionIn(_Body):
    """The classification suggestion the form showed, sent back so that it is stored beside the operator's choice."""

    category: Category
    subcategory: str = Field("", max_length=255)
    tags: list[str] = Field(default_factory=list, max_length=tx.MAX_TAGS_PER_ORDER)
    confidence: float = Field(0.0, ge=0, le=1)


class ClassifyIn(_Body):
    text: str = Field(min_length=1, max_length=5000, description="what the caller said or wrote")


class WorkOrderIn(CitizenFields):
    suggestion: SuggestionIn | None = Field(None, description="the suggestion shown (POST /api/work_orders/classify)")
    channel: StaffChannel = "hotline"
    call_id: str | None = Field(None, max_length=128)
    settled_at_once: bool = Field(False, description="当场解答: answered during the call (closed at once, 即办)")
    callback_due: date | None = None


class DispatchIn(_Body):
    assignee: str = Field(min_length=1, max_length=128, description="department or judge's team")


class ReasonIn(_Body):
    reason: str = Field(min_length=1, max_length=2000)


class ExtensionIn(_Body):
    workdays: int = Field(ge=1, le=60)
    reason: str = Field(min_length=1, max_length=2000)


class AnswerIn(_Body):
    feedback: str = Field(min_length=1, max_length=4000)


class RateIn(_Body):
    rating: int = Field(ge=1, le=5, description="1 (very dissatisfied) .. 5 (very satisfied); <= 2 reopens")
    note: str = Field("", max_length=2000)


class NoteIn(_Body):
    note: str = Field("", max_length=2000)


class EmptyIn(_Body):
    pass


class CallbackFailedIn(_Body):
    reason: str = Field("", max_length=200, description="no_answer, busy, 号码错误…; '' = 未接通")


MOVE_BODIES: dict[str, type[_Body]] = {
    "dispatch": DispatchIn, "accept": EmptyIn, "return": ReasonIn, "request_extension": ExtensionIn,
    "approve_extension": EmptyIn, "reject_extension": ReasonIn, "answer": AnswerIn, "start_callback": EmptyIn,
    "callback_failed": CallbackFailedIn,
    "rate": RateIn, "close_unreached": ReasonIn, "reopen": ReasonIn, "settle": NoteIn,
}


class DepartmentIn(_Body):
    name: str = Field(min_length=1, max_length=128)
    kind: Literal["department", "judge_team"] = "department"


class DepartmentPatch(_Body):
    active: bool | None = None
    members: list[str] | None = Field(None, max_length=200, description="usernames of its handlers (replaces)")


# ============================================================================================ helpers
def actor_of(user: User) -> Actor:
    return Actor(user.display_name or user.username, user.role, team=user.department)


def _out(request: Request, order: WorkOrder, user: User, full: bool = True) -> dict[str, Any]:
    ctx = ctx_of(request)
    return order_out(order, user.role, now=ctx.now(), calendar=ctx.calendar, full=full)


def _visible(order: WorkOrder | None, user: User) -> WorkOrder:
    """The order if ``user`` may see it: 404 when there is none; a handler gets 403 for any order not
    dispatched to their team (whether it exists or not)."""
    if user.role == "handler" and (order is None or not user.department or order.assignee != user.department):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "该工单不是转办给本部门的")
    if order is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, MSG_NO_ORDER)
    return order


def check_taxonomy(ctx: WorkOrderContext, body: CitizenFields) -> tuple[str, list[str]]:
    """Subcategory and tags checked against the taxonomy; raises ``taxonomy.Invalid``."""
    t = ctx.taxonomy()
    return t.check_subcategory(body.category, body.subcategory), t.check_tags(body.tags)


def refused(e: Refused) -> JSONResponse:
    return JSONResponse({"detail": e.message, "code": e.code}, status_code=409)


def full_detail(request: Request, db: Session, order: WorkOrder, user: User) -> dict[str, Any]:
    d = _out(request, order, user)
    d["history"] = [history_out(h, user.role) for h in db.scalars(
        select(WorkOrderHistory).where(WorkOrderHistory.order_id == order.id)
        .order_by(WorkOrderHistory.at, WorkOrderHistory.id))]
    d["attachments"] = [attachment_out(a) for a in db.scalars(
        select(WorkOrderAttachment).where(WorkOrderAttachment.order_id == order.id).order_by(WorkOrderAttachment.id))]
    return d


def known_assignee(db: Session, ctx: WorkOrderContext, name: str) -> bool:
    if name == ctx.settings.supervision_team:
        return True
    return db.scalar(select(Department.id).where(Department.name == name, Department.active.is_(True))) is not None


# ============================================================================================ file, list, read
@router.post("/api/work_orders", status_code=status.HTTP_201_CREATED,
             summary="File a work order: at wrap-up (linked to the call, its transcript attached), or a walk-in or "
                     "letter item entered by staff")
def file_work_order(body: WorkOrderIn, request: Request, db: Session = Depends(get_db),
                    user: User = Depends(require_role(*CONSOLE_ROLES))) -> Any:
    ctx = ctx_of(request)
    try:
        subcategory, tags = check_taxonomy(ctx, body)
    except tx.Invalid as e:
        return invalid([{"field": e.field, "message": e.message}])
    transcript: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    phone, case_number = body.citizen_phone, body.case_number
    if body.call_id is not None:
        call = db.get(Call, body.call_id)
        if call is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, MSG_NO_CALL)
        transcript, notes = call_transcript(db, call.call_id), call_notes(db, call.call_id)
        if not phone or looks_masked(phone):
            phone = caller_number(call.caller or "")  # the SIP URI's user part, never its host or port
        if looks_masked(case_number):
            case_number = find_case_number([x["text"] for x in transcript] + [call.digits or ""])
    elif looks_masked(phone) or looks_masked(case_number):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "电话号码或案号不完整")
    if looks_masked(body.citizen_id_number):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "身份证号不完整")
    order = create_order(db, ctx, now=ctx.now(), actor=actor_of(user), channel=body.channel,
                         category=body.category, subcategory=subcategory, tags=tags,
                         settled_at_once=body.settled_at_once, citizen_name=body.citizen_name, citizen_phone=phone,
                         citizen_id_number=body.citizen_id_number, case_number=case_number, content=body.content,
                         call_id=body.call_id, transcript=transcript, notes=notes, created_by=user.username,
                         callback_due=body.callback_due,
                         note="当场解答，即时办结" if body.settled_at_once else "")
    if body.suggestion is not None:
        classification.record(db, order, body.suggestion.model_dump(), actor=actor_of(user), at=ctx.now())
    db.commit()
    return _out(request, order, user)


@router.post("/api/work_orders/classify", summary="Suggested category, subcategory path and tags for a text, with "
                                                  "a confidence (the suggestion the forms are pre-filled with)")
def classify_text(body: ClassifyIn, request: Request,
                  user: User = Depends(require_role("operator", "supervisor", "admin", "handler"))) -> Any:
    s = classification.suggest(ctx_of(request), body.text)
    if s is None:
        return JSONResponse({"detail": "暂时无法给出分类建议", "code": "unavailable"}, status_code=503)
    return {"text": body.text} | s.as_dict()


def _filtered(q, *, statuses: list[str], category: str | None, channel: str | None, assignee: str | None,
              overdue: bool | None, since: date | None, until: date | None, text: str | None, call_id: str | None,
              ctx: WorkOrderContext):
    if statuses:
        q = q.where(WorkOrder.status.in_(statuses))
    if category:
        q = q.where(WorkOrder.category == category)
    if channel:
        q = q.where(WorkOrder.channel == channel)
    if assignee:
        q = q.where(WorkOrder.assignee == assignee)
    if call_id is not None:
        q = q.where(WorkOrder.call_id == call_id)
    tz = ctx.calendar.tz
    if since:
        q = q.where(WorkOrder.created_at >= datetime.combine(since, time(0), tz))
    if until:
        q = q.where(WorkOrder.created_at < datetime.combine(until, time(0), tz) + timedelta(days=1))
    if text:
        like = f"%{text}%"
        q = q.where(or_(WorkOrder.number == text, WorkOrder.content.like(like), WorkOrder.case_number.like(like),
                        WorkOrder.citizen_phone == text, WorkOrder.feedback.like(like)))
    if overdue is not None:
        cond = overdue_condition(ctx.now())
        q = q.where(cond if overdue else ~cond)
    return q


def overdue_condition(now: datetime):
    s = WorkOrder.status
    return or_(
        (s.in_(("received", "reopened"))) & (WorkOrder.dispatch_due < now),
        (s.in_(("dispatched", "in_progress"))) & (WorkOrder.feedback_due < now),
        (s.in_(("received", "reopened", "dispatched", "in_progress"))) & WorkOrder.overdue.is_(True),
    )


def _statuses(raw: str | None) -> list[str]:
    items = [x.strip() for x in (raw or "").split(",") if x.strip()]
    bad = [x for x in items if x not in STATES]
    if bad:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"状态无效：{'、'.join(bad)}")
    return items


@router.get("/api/work_orders", summary="Work orders, newest first, filtered (total in X-Total-Count)")
def list_work_orders(request: Request, response: Response,
                     status_: str | None = Query(None, alias="status", description="comma separated states"),
                     category: Category | None = None,
                     channel: str | None = Query(None, max_length=16),
                     assignee: str | None = Query(None, max_length=128),
                     overdue: bool | None = None,
                     since: date | None = Query(None, description="created on or after (court's day)"),
                     until: date | None = Query(None, description="created on or before (court's day)"),
                     q: str | None = Query(None, max_length=100, description="number, text, case number, phone"),
                     call_id: str | None = Query(None, max_length=128),
                     limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0),
                     db: Session = Depends(get_db),
                     user: User = Depends(require_role(*CONSOLE_ROLES))) -> list[dict[str, Any]]:
    ctx = ctx_of(request)
    where = dict(statuses=_statuses(status_), category=category, channel=channel, assignee=assignee,
                 overdue=overdue, since=since, until=until, text=q, call_id=call_id, ctx=ctx)
    base = _filtered(select(WorkOrder), **where)
    response.headers["X-Total-Count"] = str(db.scalar(_filtered(select(func.count(WorkOrder.id)), **where)))
    rows = db.scalars(base.order_by(WorkOrder.created_at.desc(), WorkOrder.id.desc()).limit(limit).offset(offset))
    return [_out(request, o, user, full=False) for o in rows]


@router.get("/api/work_orders/taxonomy", summary="The subcategory tree per category and the tags")
def taxonomy(request: Request, user: User = Depends(require_role(*ALL_ROLES))) -> dict[str, Any]:
    return ctx_of(request).taxonomy().as_dict()


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
            "overdue": [_out(request, o, user, full=False) for o in overdue],
            "extensions": [_out(request, o, user, full=False) for o in ext],
            "reopened": [_out(request, o, user, full=False) for o in reopened],
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


@router.get("/api/work_orders/{work_order_id}", summary="One work order with its history and attachments")
def get_work_order(work_order_id: int, request: Request, db: Session = Depends(get_db),
                   user: User = Depends(require_role(*ALL_ROLES))) -> dict[str, Any]:
    order = _visible(db.get(WorkOrder, work_order_id), user)
    return full_detail(request, db, order, user)


# ============================================================================================ moves
def _move_endpoint(action: str, body_model: type[_Body]):
    roles = tuple(r for r in MOVES[action].roles if r in ROLES)

    def endpoint(work_order_id: int, body: body_model, request: Request,  # type: ignore[valid-type]
                 db: Session = Depends(get_db), user: User = Depends(require_role(*roles))) -> Any:
        ctx = ctx_of(request)
        _visible(db.get(WorkOrder, work_order_id), user)
        payload = body.model_dump()
        if action == "dispatch" and not known_assignee(db, ctx, payload["assignee"]):
            return invalid([{"field": "assignee", "message": f"承办部门：未知或已停用的部门“{payload['assignee']}”"}])
        try:
            order, entry = orders.move(db, work_order_id, action, actor_of(user), payload, ctx)
        except Refused as e:
            db.rollback()
            return refused(e)
        except Conflict as e:
            return JSONResponse({"detail": e.message, "code": "conflict"}, status_code=409)
        except LookupError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, MSG_NO_ORDER) from None
        return full_detail(request, db, order, user) | {"change": history_out(entry, user.role)}

    endpoint.__name__ = f"work_order_{action}"
    endpoint.__annotations__["body"] = body_model  # a class, not the string that postponed annotations make
    return endpoint, roles


for _action, _body in MOVE_BODIES.items():
    _fn, _roles = _move_endpoint(_action, _body)
    router.add_api_route(f"/api/work_orders/{{work_order_id}}/{_action}", _fn, methods=["POST"],
                         summary=f"{_action} (roles: {', '.join(sorted(_roles))}); 409 with the reason when the "
                                 f"rules refuse")


# ============================================================================================ attachments
@router.post("/api/work_orders/{work_order_id}/attachments", status_code=status.HTTP_201_CREATED,
             summary="Attach a file (stored under HOTLINE_HOME/attachments; over the size limit: 413, nothing kept)")
def add_attachment(work_order_id: int, request: Request, file: UploadFile = File(...), db: Session = Depends(get_db),
                   user: User = Depends(require_role(*ALL_ROLES))) -> Any:
    ctx = ctx_of(request)
    order = _visible(db.get(WorkOrder, work_order_id), user)
    limit = int(ctx.settings.attachment_max_mb * 1024 * 1024)
    too_big = JSONResponse({"detail": f"附件不能超过{ctx.settings.attachment_max_mb:g} MB", "code": "too_large"},
                           status_code=413)
    name = Path(file.filename or "").name.strip()[:255]
    if not name:
        return invalid([{"field": "file", "message": "附件：缺少文件名"}])
    root = ctx.attachments_dir
    assert root is not None, "the app sets attachments_dir"
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(dir=root / "tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := file.file.read(1 << 16):
                size += len(chunk)
                if size > limit:
                    return too_big
                digest.update(chunk)
                out.write(chunk)
        sha = digest.hexdigest()
        final = root / sha[:2] / sha
        final.parent.mkdir(parents=True, exist_ok=True)
        if not final.exists():
            os.replace(tmp, final)
        now = ctx.now()
        att = WorkOrderAttachment(order_id=order.id, name=name, content_type=(file.content_type or "")[:128]
                                  or "application/octet-stream", size=size, sha256=sha, created_by=user.username,
                                  created_at=now)
        db.add(att)
        try:
            orders.record(db, order, actor=actor_of(user), action="attach", at=now, note=f"{name}（{size} 字节）")
            db.commit()
        except Conflict as e:
            db.rollback()
            return JSONResponse({"detail": e.message, "code": "conflict"}, status_code=409)
        return attachment_out(att)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@router.get("/api/work_orders/{work_order_id}/attachments/{attachment_id}", summary="Download an attachment")
def get_attachment(work_order_id: int, attachment_id: int, request: Request, db: Session = Depends(get_db),
                   user: User = Depends(require_role(*ALL_ROLES))) -> Any:
    _visible(db.get(WorkOrder, work_order_id), user)
    att = db.get(WorkOrderAttachment, attachment_id)
    if att is None or att.order_id != work_order_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "未找到该附件")
    path = ctx_of(request).attachments_dir / att.sha256[:2] / att.sha256
    if not path.exists():
        raise HTTPException(status.HTTP_410_GONE, "附件文件已不存在")
    inline = att.content_type in SAFE_INLINE
    return FileResponse(path, media_type=att.content_type if inline else "application/octet-stream",
                        headers={"Content-Disposition": f"{'inline' if inline else 'attachment'}; "
                                                        f"filename*=UTF-8''{quote(att.name)}",
                                 "X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": "default-src 'none'; sandbox"})


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
    return {"team": team, "orders": [_out(request, o, user, full=False) for o in rows],
            "notices": _notices(db, user, unread=True, limit=100) if user.role == "handler" else []}


# ============================================================================================ departments
def _department_out(d: Department, members: list[str]) -> dict[str, Any]:
    return {"id": d.id, "name": d.name, "kind": d.kind, "active": d.active, "members": members}


@router.get("/api/departments", summary="Departments and judges' teams orders are dispatched to")
def departments(db: Session = Depends(get_db), user: User = Depends(require_role(*ALL_ROLES))) -> list[dict[str, Any]]:
    members = members_of(db)
    return [_department_out(d, members.get(d.name, []))
            for d in db.scalars(select(Department).order_by(Department.kind, Department.name))]


@router.post("/api/departments", status_code=status.HTTP_201_CREATED, summary="Add a department or judge's team")
def add_department_(body: DepartmentIn, request: Request, db: Session = Depends(get_db),
                    user: User = Depends(require_role(*SUPERVISING))) -> Any:
    try:
        d = add_department(db, body.name, body.kind, reserved=ctx_of(request).settings.supervision_team)
    except DepartmentError as e:
        db.rollback()
        return JSONResponse({"detail": str(e), "code": "refused"}, status_code=409)
    db.commit()
    return _department_out(d, [])


@router.patch("/api/departments/{department_id}", summary="Enable/disable a department, set its handlers")
def patch_department(department_id: int, body: DepartmentPatch, db: Session = Depends(get_db),
                     user: User = Depends(require_role("admin"))) -> Any:
    d = db.get(Department, department_id)
    if d is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "未找到该部门")
    if body.active is not None:
        d.active = body.active
    if body.members is not None:
        try:
            set_members(db, d, body.members)
        except DepartmentError as e:
            db.rollback()
            return invalid([{"field": "members", "message": f"成员：{e}"}])
    db.commit()
    return _department_out(d, members_of(db).get(d.name, []))


# ============================================================================================ wrap-up draft
@router.get("/api/calls/{call_id}/work_order_draft", summary="A work order pre-filled from the call")
def work_order_draft(call_id: str, request: Request, db: Session = Depends(get_db),
                     user: User = Depends(require_role(*CONSOLE_ROLES))) -> dict[str, Any]:
    call = db.get(Call, call_id)
    if call is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, MSG_NO_CALL)
    live = request.app.state.ops.live_call(call_id)
    kb_category = None
    if live is not None:
        kb_category = live.kb_category
        for items in live.suggestions.values():  # the best candidate for the caller's first question
            if items:
                kb_category = kb_category or items[0].category
                break
    draft = draft_for_call(db, call, queue_category=live.category if live else None, kb_category=kb_category)
    out = draft.as_dict()
    # the menu or queue says what the caller chose: only the path and tags are suggested within it
    fixed = draft.category if draft.category_source in ("menu", "queue") else None
    s = classification.suggest(ctx_of(request), draft.content, fixed)
    out["suggestion"] = s.as_dict() if s is not None else None
    if s is not None:
        out.update(category=s.category, subcategory=s.subcategory, tags=s.tags,
                   category_source=draft.category_source if fixed else "suggestion")
    return mask_for(user.role, out)


assert set(MOVE_BODIES) == set(MOVES) and set(CATEGORIES) == set(Category.__args__)  # type: ignore[attr-defined]
