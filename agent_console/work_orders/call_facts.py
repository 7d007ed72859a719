"""What a call tells a work order: the caller's transcript and notes, the summary of what was said and what the
IVR answered, the category its menu path suggests, a case number said or keyed, and the draft an operator's
form starts from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_console.models import Call, CallEventRecord
from work_orders.dial_plan import caller_number
from work_orders.filing import STATUS_PROMPT
from work_orders.models import WORK_ORDER_CATEGORIES, WorkOrder
from work_orders.summary import summarize
from zh_text import parse_case_number

#: menu node names (or parts of them) that say what the caller wanted, most specific first
NODE_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("contact_judge", "contact_judge"), ("case_query", "query"), ("case_number", "query"), ("id_number", "query"),
    ("query", "query"), ("urge", "urge"), ("complaint", "complaint"), ("suggestion", "suggestion"),
    ("consult", "consult"),
)


_RECORDING_PREFIX = re.compile(r"^[^：\n]*（录音 [^）]*）：?")
_KB_MARK = re.compile(r"（知识库[^）]*）")


def call_summary(db: Session, call_id: str | None, *, content: str, transcript: list[dict[str, Any]],
                 case_number: str = "") -> str:
    """The extractive summary (``work_orders.summary``) of what the caller said (else the order's text), with what
    the IVR answered in the call: the knowledge base's answers, the case status heard."""
    said = [x["text"] for x in transcript if x.get("speaker", "caller") == "caller" and x.get("text")]
    # the order's text adds what the caller recorded (messages); the rest of it only when nothing was heard
    lines = [_KB_MARK.sub("", line) for line in content.splitlines()]
    written = [_RECORDING_PREFIX.sub("", line) for line in lines if not said or _RECORDING_PREFIX.match(line)]
    answered: list[str] = []
    if call_id:
        for p in db.scalars(select(CallEventRecord.payload).where(CallEventRecord.call_id == call_id,
                                                                  CallEventRecord.type == "kb_decided")
                            .order_by(CallEventRecord.ts)):
            if p.get("decision") == "answer":
                answered.append(f"知识库解答“{p.get('query') or p.get('faq_id') or ''}”")
        call = db.get(Call, call_id)
        status = [x.split(":", 2)[2] for x in (call.prompts if call is not None else None) or []
                  if x.startswith(STATUS_PROMPT) and x.count(":") >= 2]
        if status:
            answered.append("已播报案件状态：" + "".join(dict.fromkeys(status))[:80])
    return summarize(said + [w for w in written if w and w not in said], case_numbers=[case_number],
                     answered=answered).text()


def call_transcript(db: Session, call_id: str) -> list[dict[str, Any]]:
    """The call's final utterances in order, with who spoke (from its stored events)."""
    rows = db.scalars(select(CallEventRecord).where(CallEventRecord.call_id == call_id,
                                                    CallEventRecord.type == "speech_heard")
                      .order_by(CallEventRecord.ts, CallEventRecord.received_at)).all()
    return [{"speaker": r.payload.get("speaker", "caller"), "text": r.payload.get("text", ""),
             "at": r.ts.isoformat()} for r in rows if r.payload.get("kind") == "final" and r.payload.get("text")]


def refresh_call_transcript(db: Session, call_id: str) -> int:
    """Give the orders filed from a call its transcript as stored now; how many changed (the caller commits)."""
    orders_of_call = db.scalars(select(WorkOrder).where(WorkOrder.call_id == call_id)).all()
    if not orders_of_call:
        return 0
    transcript = call_transcript(db, call_id)
    changed = [o for o in orders_of_call if o.transcript != transcript]
    for o in changed:
        o.transcript = transcript
    return len(changed)


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
                 subcategory="", tags=[], citizen_phone=caller_number(call.caller or ""),
                 case_number=find_case_number(caller_lines + digits),
                 content="\n".join(caller_lines), transcript=transcript, notes=call_notes(db, call.call_id),
                 menu_path=menu_path)
