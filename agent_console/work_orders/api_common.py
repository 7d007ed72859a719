"""What the work-order API's routers share: request bodies (Chinese field errors come from
``agent_console.work_orders.errors``), who may see an order, how an order leaves for a browser (masked per role)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from agent_console.models import ROLES, User
from agent_console.work_orders.views import attachment_out, contact_out, history_out, order_out
from work_orders import taxonomy as tx
from work_orders.models import Department, WorkOrder, WorkOrderAttachment, WorkOrderContact, WorkOrderHistory
from work_orders.rules import MOVES, Actor, Refused
from work_orders.settings import CATEGORIES
from work_orders.store import WorkOrderContext

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
class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CitizenFields(Body):
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


class SuggestionIn(Body):
    """The classification suggestion the form showed, sent back so that it is stored beside the operator's choice."""

    category: Category
    subcategory: str = Field("", max_length=255)
    tags: list[str] = Field(default_factory=list, max_length=tx.MAX_TAGS_PER_ORDER)
    confidence: float = Field(0.0, ge=0, le=1)


class ClassifyIn(Body):
    text: str = Field(min_length=1, max_length=5000, description="what the caller said or wrote")


class WorkOrderIn(CitizenFields):
    suggestion: SuggestionIn | None = Field(None, description="the suggestion shown (POST /api/work_orders/classify)")
    channel: StaffChannel = "hotline"
    call_id: str | None = Field(None, max_length=128)
    settled_at_once: bool = Field(False, description="当场解答: answered during the call (closed at once, 即办)")
    callback_due: date | None = None


class JoinIn(Body):
    call_id: str = Field(min_length=1, max_length=128, description="the call that joins the order (重复来电)")
    note: str = Field("", max_length=2000)


class SummaryIn(Body):
    summary: str = Field(max_length=4000, description="the call summary as the handler corrected it")


class DispatchIn(Body):
    assignee: str = Field(min_length=1, max_length=128, description="department or judge's team")


class ReasonIn(Body):
    reason: str = Field(min_length=1, max_length=2000)


class ExtensionIn(Body):
    workdays: int = Field(ge=1, le=60)
    reason: str = Field(min_length=1, max_length=2000)


class AnswerIn(Body):
    feedback: str = Field(min_length=1, max_length=4000)


class RateIn(Body):
    rating: int = Field(ge=1, le=5, description="1 (very dissatisfied) .. 5 (very satisfied); <= 2 reopens")
    note: str = Field("", max_length=2000)


class NoteIn(Body):
    note: str = Field("", max_length=2000)


class EmptyIn(Body):
    pass


class CallbackFailedIn(Body):
    reason: str = Field("", max_length=200, description="no_answer, busy, 号码错误…; '' = 未接通")


MOVE_BODIES: dict[str, type[Body]] = {
    "dispatch": DispatchIn, "accept": EmptyIn, "return": ReasonIn, "request_extension": ExtensionIn,
    "approve_extension": EmptyIn, "reject_extension": ReasonIn, "answer": AnswerIn, "start_callback": EmptyIn,
    "callback_failed": CallbackFailedIn,
    "rate": RateIn, "close_unreached": ReasonIn, "reopen": ReasonIn, "settle": NoteIn,
}


class DepartmentIn(Body):
    name: str = Field(min_length=1, max_length=128)
    kind: Literal["department", "judge_team"] = "department"


class DepartmentPatch(Body):
    active: bool | None = None
    members: list[str] | None = Field(None, max_length=200, description="usernames of its handlers (replaces)")


# ============================================================================================ helpers
def actor_of(user: User) -> Actor:
    return Actor(user.display_name or user.username, user.role, team=user.department)


def order_json(request: Request, order: WorkOrder, user: User, full: bool = True) -> dict[str, Any]:
    ctx = ctx_of(request)
    return order_out(order, user.role, now=ctx.now(), calendar=ctx.calendar, full=full)


def visible_order(order: WorkOrder | None, user: User) -> WorkOrder:
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
    d = order_json(request, order, user)
    d["history"] = [history_out(h, user.role) for h in db.scalars(
        select(WorkOrderHistory).where(WorkOrderHistory.order_id == order.id)
        .order_by(WorkOrderHistory.at, WorkOrderHistory.id))]
    d["attachments"] = [attachment_out(a) for a in db.scalars(
        select(WorkOrderAttachment).where(WorkOrderAttachment.order_id == order.id).order_by(WorkOrderAttachment.id))]
    d["contacts"] = [contact_out(c) for c in db.scalars(
        select(WorkOrderContact).where(WorkOrderContact.order_id == order.id).order_by(WorkOrderContact.at))]
    return d


def known_assignee(db: Session, ctx: WorkOrderContext, name: str) -> bool:
    if name == ctx.settings.supervision_team:
        return True
    return db.scalar(select(Department.id).where(Department.name == name, Department.active.is_(True))) is not None




def overdue_condition(now: datetime):
    s = WorkOrder.status
    return or_(
        (s.in_(("received", "reopened"))) & (WorkOrder.dispatch_due < now),
        (s.in_(("dispatched", "in_progress"))) & (WorkOrder.feedback_due < now),
        (s.in_(("received", "reopened", "dispatched", "in_progress"))) & WorkOrder.overdue.is_(True),
    )


assert set(MOVE_BODIES) == set(MOVES) and set(CATEGORIES) == set(Category.__args__)  # type: ignore[attr-defined]
