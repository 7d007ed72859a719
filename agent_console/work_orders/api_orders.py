"""``/api/work_orders``: file, classify, list, the taxonomy; ``/api/calls/{call_id}/work_order_draft`` for
operators at wrap-up. A masked phone number or case number sent back from a draft is replaced by the call's own."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from agent_console.deps import CONSOLE_ROLES, get_db, require_role
from agent_console.models import Call, User
from agent_console.pii import mask_for
from agent_console.work_orders import classification
from agent_console.work_orders.api_common import (
    ALL_ROLES,
    MSG_NO_CALL,
    Category,
    ClassifyIn,
    WorkOrderIn,
    actor_of,
    check_taxonomy,
    ctx_of,
    order_json,
    overdue_condition,
)
from agent_console.work_orders.call_facts import call_notes, call_transcript, draft_for_call, find_case_number
from agent_console.work_orders.errors import invalid
from agent_console.work_orders.service import create_order, find_repeat, looks_masked, order_of_call
from work_orders import taxonomy as tx
from work_orders.dial_plan import caller_number
from work_orders.models import WorkOrder
from work_orders.rules import STATE_NAMES, STATES
from work_orders.settings import CATEGORY_NAMES
from work_orders.store import WorkOrderContext

router = APIRouter(tags=["work orders"])


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
    return order_json(request, order, user)


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
        # ilike: SQLite's LIKE ignores ASCII case, PostgreSQL's does not ("app" finds "APP" on both)
        q = q.where(or_(WorkOrder.number == text, WorkOrder.content.ilike(like), WorkOrder.case_number.ilike(like),
                        WorkOrder.citizen_phone == text, WorkOrder.feedback.ilike(like)))
    if overdue is not None:
        cond = overdue_condition(ctx.now())
        q = q.where(cond if overdue else ~cond)
    return q


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
    return [order_json(request, o, user, full=False) for o in rows]


@router.get("/api/work_orders/taxonomy", summary="The subcategory tree per category and the tags")
def taxonomy(request: Request, user: User = Depends(require_role(*ALL_ROLES))) -> dict[str, Any]:
    return ctx_of(request).taxonomy().as_dict()



# ============================================================================================ wrap-up draft
def _link(db: Session, ctx: WorkOrderContext, call: Call) -> dict[str, Any]:
    """The order the call filed or joined (wrap-up may end), else an open order of the same number or case it
    may join (重复来电)."""
    mine = order_of_call(db, call.call_id)
    if mine is not None:
        return {"order": {"id": mine.id, "number": mine.number}, "repeat_of": None}
    said = [x["text"] for x in call_transcript(db, call.call_id) if x["speaker"] == "caller"]
    found = find_repeat(db, ctx, phone=caller_number(call.caller or ""), at=ctx.now(),
                        case_number=find_case_number(said + ([call.digits] if call.digits else [])))
    return {"order": None, "repeat_of": None if found is None else {
        "id": found[0].id, "number": found[0].number, "category_name": CATEGORY_NAMES.get(found[0].category),
        "status_name": STATE_NAMES.get(found[0].status), "content": (found[0].content or "")[:200],
        "matched_by": found[1], "matched_by_name": "同一号码" if found[1] == "phone" else "同一案号"}}


@router.get("/api/calls/{call_id}/order_link", summary="The call's work order, or an open order of the same number "
                                                      "or case it may join (重复来电)")
def order_link(call_id: str, request: Request, db: Session = Depends(get_db),
               user: User = Depends(require_role(*CONSOLE_ROLES))) -> dict[str, Any]:
    call = db.get(Call, call_id)
    if call is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, MSG_NO_CALL)
    return mask_for(user.role, _link(db, ctx_of(request), call))


@router.get("/api/calls/{call_id}/work_order_draft", summary="A work order pre-filled from the call")
def work_order_draft(call_id: str, request: Request, db: Session = Depends(get_db),
                     user: User = Depends(require_role(*CONSOLE_ROLES))) -> dict[str, Any]:
    call = db.get(Call, call_id)
    if call is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, MSG_NO_CALL)
    hints = request.app.state.ops.call_hints(call_id) or {}
    draft = draft_for_call(db, call, queue_category=hints.get("queue_category"), kb_category=hints.get("kb_category"))
    out = draft.as_dict()
    # the menu or queue says what the caller chose: only the path and tags are suggested within it
    fixed = draft.category if draft.category_source in ("menu", "queue") else None
    s = classification.suggest(ctx_of(request), draft.content, fixed)
    out["suggestion"] = s.as_dict() if s is not None else None
    if s is not None:
        out.update(category=s.category, subcategory=s.subcategory, tags=s.tags,
                   category_source=draft.category_source if fixed else "suggestion")
    out |= _link(db, ctx_of(request), call)
    return mask_for(user.role, out)
