"""Filing work orders: numbers per day, the draft from a call, and the orders the hub files itself.

Numbers are ``12368-YYYYMMDD-NNNN`` (the day in the court's time zone, NNNN from 0001 each day); two
filings racing for a number both succeed (the unique index refuses one, it takes the next).

The hub files an order by itself when a caller in the queue chose a callback (``QueueLeft`` outcome
``callback``) or left a message after hours or for a callback (``MessageRecorded``). These carry
``auto_key = "auto:<call id>"``, so a call yields at most one such order however often or in whichever
order its events arrive; a later message adds to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from agent_console.models import WORK_ORDER_CATEGORIES, Call, CallEventRecord, WorkOrder, utcnow
from agent_console.work_orders.calendar import WorkCalendar
from zh_text import parse_case_number

PREFIX = "12368"
_ATTEMPTS = 20
#: menu node names (or parts of them) that say what the caller wanted, most specific first
NODE_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("contact_judge", "contact_judge"), ("case_query", "query"), ("case_number", "query"), ("id_number", "query"),
    ("query", "query"), ("urge", "urge"), ("complaint", "complaint"), ("suggestion", "suggestion"),
    ("consult", "consult"),
)
CATEGORY_NAMES = {"consult": "咨询", "query": "查询", "urge": "催办", "contact_judge": "联络法官",
                  "complaint": "投诉信访", "suggestion": "意见建议"}


def number_prefix(day: date) -> str:
    return f"{PREFIX}-{day:%Y%m%d}-"


def next_number(db: Session, day: date) -> str:
    prefix = number_prefix(day)
    last = db.scalar(select(WorkOrder.number).where(WorkOrder.number.like(prefix + "%"))
                     .order_by(WorkOrder.number.desc()).limit(1))
    n = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{n:04d}"


def create_order(db: Session, calendar: WorkCalendar, *, now: datetime | None = None, **fields: Any) -> WorkOrder:
    """Add a work order with the day's next number (the caller commits)."""
    now = now or utcnow()
    day = calendar.local_date(now)
    for _ in range(_ATTEMPTS):
        order = WorkOrder(number=next_number(db, day), created_at=now, **fields)
        try:
            with db.begin_nested():
                db.add(order)
                db.flush()
            return order
        except IntegrityError:
            key = fields.get("auto_key")
            if key and db.scalar(select(WorkOrder.id).where(WorkOrder.auto_key == key)):
                raise
            continue
    raise RuntimeError("no free work-order number after several attempts")


def call_transcript(db: Session, call_id: str) -> list[dict[str, Any]]:
    """The call's final utterances in order, with who spoke (from its stored events)."""
    rows = db.scalars(select(CallEventRecord).where(CallEventRecord.call_id == call_id,
                                                    CallEventRecord.type == "speech_heard")
                      .order_by(CallEventRecord.ts, CallEventRecord.received_at)).all()
    return [{"speaker": r.payload.get("speaker", "caller"), "text": r.payload.get("text", ""),
             "at": r.ts.isoformat()} for r in rows if r.payload.get("kind") == "final" and r.payload.get("text")]


def call_notes(db: Session, call_id: str) -> list[dict[str, Any]]:
    rows = db.scalars(select(CallEventRecord).where(CallEventRecord.call_id == call_id,
                                                    CallEventRecord.type == "operator_note")
                      .order_by(CallEventRecord.ts)).all()
    return [dict(r.payload) for r in rows]


def category_from_menu(menu_path: list[str]) -> str | None:
    for node in reversed(menu_path):
        for part, category in NODE_CATEGORIES:
            if part in node:
                return category
    return None


def find_case_number(texts: list[str]) -> str:
    for t in texts:
        found = parse_case_number(t)
        if found is not None:
            return found.canonical
    return ""


@dataclass
class Draft:
    call_id: str
    channel: str
    category: str
    category_source: str
    subcategory: str
    tags: list[str]
    citizen_phone: str
    case_number: str
    content: str
    transcript: list[dict[str, Any]]
    notes: list[dict[str, Any]]
    menu_path: list[str]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def draft_for_call(db: Session, call: Call, *, queue_category: str | None = None,
                   kb_category: str | None = None) -> Draft:
    """A work order pre-filled from the call: category from the menu path, else the queue's, else the KB's."""
    transcript = call_transcript(db, call.call_id)
    caller_lines = [x["text"] for x in transcript if x["speaker"] == "caller"]
    menu_path = list(call.menu_path or [])
    category, source = "consult", "default"
    for found, where in ((category_from_menu(menu_path), "menu"), (queue_category, "queue"),
                         (kb_category, "knowledge_base")):
        if found in WORK_ORDER_CATEGORIES:
            category, source = found, where
            break
    digits = [call.digits] if call.digits else []
    return Draft(call_id=call.call_id, channel="hotline", category=category, category_source=source,
                 subcategory="", tags=[], citizen_phone=call.caller or "",
                 case_number=find_case_number(caller_lines + digits),
                 content="\n".join(caller_lines), transcript=transcript, notes=call_notes(db, call.call_id),
                 menu_path=menu_path)


def ensure_auto_order(db: Session, calendar: WorkCalendar, *, call_id: str, kind: str, at: datetime,
                      category: str | None = None, text: str = "", recording: str = "",
                      callback_due: date | None = None) -> tuple[WorkOrder, bool]:
    """The hub's own order for a call (callback request or recorded message): created once, then added to.

    Returns the order and whether it was created now. The caller commits.
    """
    key = f"auto:{call_id}"
    call = db.get(Call, call_id)
    line = {"callback": "来电人在排队时选择回电", "after_hours": "非工作时间来电留言",
            "message": "来电人留言"}.get(kind, kind)
    if recording:
        line += f"（录音 {recording}）"
    if text:
        line += f"：{text}"
    existing = db.scalar(select(WorkOrder).where(WorkOrder.auto_key == key))
    if existing is not None:
        if line not in existing.content:
            existing.content = (existing.content + "\n" + line).strip()
        if callback_due and (existing.callback_due is None or callback_due > existing.callback_due):
            existing.callback_due = callback_due
        return existing, False
    if category not in WORK_ORDER_CATEGORIES:
        category = category_from_menu(list(call.menu_path or [])) if call is not None else None
        category = category if category in WORK_ORDER_CATEGORIES else "consult"
    texts = [x["text"] for x in call_transcript(db, call_id)] + ([text] if text else [])
    try:
        order = create_order(db, calendar, now=at, channel="hotline", category=category, subcategory="",
                             tags=["回电"], status="received", settled_at_once=False,
                             citizen_phone=(call.caller if call is not None else "") or "",
                             case_number=find_case_number(texts), content=line, call_id=call_id,
                             transcript=call_transcript(db, call_id), notes=[], auto_key=key,
                             created_by="hub", callback_due=callback_due)
    except IntegrityError:  # another hub filed it first
        existing = db.scalar(select(WorkOrder).where(WorkOrder.auto_key == key))
        assert existing is not None
        return existing, False
    return order, True


_MASKED = re.compile(r"\*")


def looks_masked(value: str) -> bool:
    return bool(_MASKED.search(value or ""))
