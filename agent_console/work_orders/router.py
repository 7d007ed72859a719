"""``/api/work_orders`` (file, read) and ``/api/calls/{call_id}/work_order_draft`` for operators at wrap-up.

What leaves for a browser is masked for roles that must not see personal data; what is stored is not:
a masked phone number or case number sent back from a draft is replaced by the call's own.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_console.deps import CONSOLE_ROLES, get_db, require_role
from agent_console.models import Call, User, WorkOrder, utcnow
from agent_console.pii import mask_for
from agent_console.work_orders.calendar import WorkCalendar
from agent_console.work_orders.service import (
    call_notes,
    call_transcript,
    create_order,
    draft_for_call,
    find_case_number,
    looks_masked,
)

router = APIRouter(tags=["work orders"])
Category = Literal["consult", "query", "urge", "contact_judge", "complaint", "suggestion"]
Channel = Literal["hotline", "web", "walk_in", "letter"]
MSG_NO_CALL = "未找到该通话记录"


class WorkOrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channel: Channel = "hotline"
    category: Category
    subcategory: str = Field("", max_length=64)
    tags: list[str] = Field(default_factory=list, max_length=20)
    content: str = Field(min_length=1, max_length=5000)
    citizen_phone: str = Field("", max_length=64)
    case_number: str = Field("", max_length=64)
    call_id: str | None = Field(None, max_length=128)
    settled_at_once: bool = False
    callback_due: date | None = None

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        items = [t.strip() for t in v if t.strip()]
        if any(len(t) > 32 for t in items):
            raise ValueError("each tag at most 32 characters")
        return items


class WorkOrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    number: str
    channel: str
    category: str
    subcategory: str
    tags: list[str]
    status: str
    settled_at_once: bool
    citizen_phone: str
    case_number: str
    content: str
    call_id: str | None
    transcript: list[dict[str, Any]]
    notes: list[dict[str, Any]]
    created_by: str
    created_at: datetime
    closed_at: datetime | None
    callback_due: date | None


def _calendar(request: Request) -> WorkCalendar:
    c = request.app.state.config
    return WorkCalendar.of(c.timezone, c.holidays, c.extra_workdays)


def _out(order: WorkOrder, user: User) -> dict[str, Any]:
    return mask_for(user.role, WorkOrderOut.model_validate(order).model_dump(mode="json"))


@router.post("/api/work_orders", status_code=status.HTTP_201_CREATED, response_model=WorkOrderOut,
             summary="File a work order (at wrap-up: linked to the call, its transcript attached)")
def file_work_order(body: WorkOrderIn, request: Request, db: Session = Depends(get_db),
                    user: User = Depends(require_role(*CONSOLE_ROLES))) -> dict[str, Any]:
    transcript: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    phone, case_number = body.citizen_phone, body.case_number
    if body.call_id is not None:
        call = db.get(Call, body.call_id)
        if call is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, MSG_NO_CALL)
        transcript, notes = call_transcript(db, call.call_id), call_notes(db, call.call_id)
        if not phone or looks_masked(phone):
            phone = call.caller or ""
        if looks_masked(case_number):
            case_number = find_case_number([x["text"] for x in transcript] + [call.digits or ""])
    elif looks_masked(phone) or looks_masked(case_number):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "电话号码或案号不完整")
    now = utcnow()
    order = create_order(db, _calendar(request), now=now, channel=body.channel, category=body.category,
                         subcategory=body.subcategory, tags=body.tags,
                         status="closed" if body.settled_at_once else "received",
                         settled_at_once=body.settled_at_once, citizen_phone=phone, case_number=case_number,
                         content=body.content, call_id=body.call_id, transcript=transcript, notes=notes,
                         created_by=user.username, closed_at=now if body.settled_at_once else None,
                         callback_due=body.callback_due)
    db.commit()
    return _out(order, user)


@router.get("/api/work_orders", response_model=list[WorkOrderOut], summary="Latest work orders, newest first")
def list_work_orders(call_id: str | None = Query(None, max_length=128), limit: int = Query(50, ge=1, le=500),
                     db: Session = Depends(get_db),
                     user: User = Depends(require_role(*CONSOLE_ROLES))) -> list[dict[str, Any]]:
    q = select(WorkOrder).order_by(WorkOrder.created_at.desc(), WorkOrder.id.desc()).limit(limit)
    if call_id is not None:
        q = q.where(WorkOrder.call_id == call_id)
    return [_out(o, user) for o in db.scalars(q)]


@router.get("/api/work_orders/{work_order_id}", response_model=WorkOrderOut, summary="One work order")
def get_work_order(work_order_id: int, db: Session = Depends(get_db),
                   user: User = Depends(require_role(*CONSOLE_ROLES))) -> dict[str, Any]:
    order = db.get(WorkOrder, work_order_id)
    if order is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "未找到该工单")
    return _out(order, user)


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
    return mask_for(user.role, draft.as_dict())
