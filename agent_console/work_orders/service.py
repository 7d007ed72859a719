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
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from agent_console.models import Call, CallEventRecord, utcnow
from agent_console.work_orders import classification
from agent_console.work_orders.call_facts import call_summary, call_transcript, category_from_menu, find_case_number
from court_cases.models import VerifyAttempt
from knowledge_base.store import get_entry
from work_orders import store as orders
from work_orders.calendar import WorkCalendar
from work_orders.dial_plan import caller_number
from work_orders.filing import STATUS_PROMPT
from work_orders.models import WORK_ORDER_CATEGORIES, Department, WorkOrder, WorkOrderContact, WorkOrderHistory
from work_orders.rules import Actor
from work_orders.store import WorkOrderContext


def create_order(db: Session, calendar: WorkCalendar | WorkOrderContext, *, now: datetime | None = None,
                 actor: Actor | None = None, **fields: Any) -> WorkOrder:
    """Add a work order with the day's next number, its call summary and its first history line (the caller
    commits)."""
    ctx = calendar if isinstance(calendar, WorkOrderContext) else WorkOrderContext(calendar)
    who = actor or Actor(str(fields.get("created_by") or "hub"), "system")
    if "summary" not in fields:
        fields["summary"] = call_summary(db, fields.get("call_id"), content=str(fields.get("content") or ""),
                                         transcript=fields.get("transcript") or [],
                                         case_number=str(fields.get("case_number") or ""))
    return orders.create(db, ctx, actor=who, now=now or utcnow(), **fields)


HUB = Actor("hub", "system")
TRANSCRIBING = "（转写中）"  # the message is reported before its transcript (MessageTranscribed follows)
NOTHING_HEARD = "（未识别出文字）"
MESSAGE_LINES = {"callback": "来电人在排队时选择回电", "missed": "来电人排队等待时挂机，未接通，请回拨",
                 "after_hours": "非工作时间来电留言", "message": "来电人留言"}
PURPOSE_NAMES = {"contact_judge": "联络法官留言", "urge": "催办留言", "complaint": "投诉留言",
                 "suggestion": "意见建议留言"}


def ensure_auto_order(db: Session, ctx: WorkOrderContext, *, call_id: str, kind: str, at: datetime,
                      category: str | None = None, text: str = "", recording: str = "",
                      callback_due: date | None = None) -> tuple[WorkOrder, bool]:
    """The hub's own order for a call (callback request or recorded message): created once, then added to.

    Returns the order and whether it was created now. The caller commits.
    """
    key = f"auto:{call_id}"
    call = db.get(Call, call_id)
    line = MESSAGE_LINES.get(kind, kind)
    if recording:
        line += f"（录音 {recording}）"
    if text:
        line += f"：{text}"
    existing = order_of_call(db, call_id, any_order=False)
    texts = [x["text"] for x in call_transcript(db, call_id)] + ([text] if text else [])
    if existing is None:  # 重复来电: an open order of the same number or case takes this call
        found = find_repeat(db, ctx, phone=caller_number(call.caller if call is not None else ""),
                            case_number=find_case_number(texts), at=at)
        if found is not None:
            existing = found[0]
            join_order(db, existing, call_id=call_id, at=at, matched_by=found[1], note=line, actor=HUB)
    if existing is not None:
        fields: dict[str, Any] = {}
        if line not in existing.content:
            fields["content"] = (existing.content + "\n" + line).strip()
        if callback_due and (existing.callback_due is None or callback_due > existing.callback_due):
            fields["callback_due"] = callback_due
        if recording and recording not in (existing.recordings or []):
            fields["recordings"] = [*(existing.recordings or []), recording]
        if fields:
            orders.record(db, existing, actor=HUB, action="append", at=at, fields=fields, note=line)
        return existing, False
    if category not in WORK_ORDER_CATEGORIES:
        category = category_from_menu(list(call.menu_path or [])) if call is not None else None
    # a category given or chosen in the menu stays; else the caller's words decide it (consult without words)
    fixed = category if category in WORK_ORDER_CATEGORIES else None
    category = fixed or "consult"
    tags = ["回电"] + (["非工作时间"] if kind == "after_hours" else []) + (["留言"] if recording else [])
    caller_said = "\n".join(x["text"] for x in call_transcript(db, call_id) if x["speaker"] == "caller")
    suggestion = classification.suggest(ctx, "\n".join(filter(None, [caller_said, text])), fixed)
    if suggestion is not None:
        category = suggestion.category
    try:
        order = create_order(db, ctx, now=at, actor=HUB, channel="hotline", category=category,
                             subcategory=suggestion.subcategory if suggestion else "",
                             tags=classification.merged_tags(tags, suggestion), settled_at_once=False,
                             citizen_phone=caller_number(call.caller if call is not None else ""),
                             case_number=find_case_number(texts), content=line, call_id=call_id,
                             transcript=call_transcript(db, call_id), notes=[], auto_key=key, created_by="hub",
                             callback_due=callback_due, recordings=[recording] if recording else [])
    except IntegrityError:  # another hub filed it first
        existing = db.scalar(select(WorkOrder).where(WorkOrder.auto_key == key))
        assert existing is not None
        return existing, False
    if suggestion is not None:
        classification.record(db, order, suggestion.as_dict(), actor=HUB, at=at)
    return order, True


def kb_settled_order(db: Session, ctx: WorkOrderContext, *, call_id: str, at: datetime) -> tuple[WorkOrder, bool]:
    """即办: a call the knowledge base answered and the caller then hung up on becomes a closed consult order,
    settled at once (one per call). The caller commits."""
    key = f"kb:{call_id}"
    existing = db.scalar(select(WorkOrder).where(WorkOrder.auto_key == key))
    if existing is not None:
        return existing, False

    call = db.get(Call, call_id)
    rows = db.scalars(select(CallEventRecord).where(CallEventRecord.call_id == call_id,
                                                    CallEventRecord.type == "kb_decided")
                      .order_by(CallEventRecord.ts)).all()
    answered = [r.payload for r in rows if r.payload.get("decision") == "answer"]
    category, lines = "consult", []
    for p in answered:
        entry = get_entry(db, p["faq_id"]) if p.get("faq_id") else None
        if entry is not None and entry.category in WORK_ORDER_CATEGORIES:
            category = entry.category
        question = p.get("query") or (entry.question if entry is not None else "")
        lines.append(f"{question}（知识库 {p.get('faq_id') or ''} 自动解答）".strip())
    transcript = call_transcript(db, call_id)
    said = "\n".join(x["text"] for x in transcript if x["speaker"] == "caller")
    content = "\n".join(lines) or said or "知识库自动解答"
    suggestion = classification.suggest(ctx, said or "\n".join(lines), category)
    try:
        order = create_order(db, ctx, now=at, actor=HUB, channel="hotline", category=category,
                             subcategory=suggestion.subcategory if suggestion else "",
                             tags=classification.merged_tags(["即办", "知识库解答"], suggestion), settled_at_once=True,
                             citizen_phone=caller_number(call.caller if call is not None else ""),
                             case_number=find_case_number([x["text"] for x in transcript]), content=content,
                             call_id=call_id, transcript=transcript, notes=[], auto_key=key, created_by="hub",
                             note="知识库自动解答，来电人未转人工，即时办结")
    except IntegrityError:
        existing = db.scalar(select(WorkOrder).where(WorkOrder.auto_key == key))
        assert existing is not None
        return existing, False
    if suggestion is not None:
        classification.record(db, order, suggestion.as_dict(), actor=HUB, at=at)
    return order, True


def verified_case_number(db: Session, call_id: str) -> str:
    """The case the caller proved theirs in this call (the hub's case desk recorded the check), or ''."""
    return db.scalar(select(VerifyAttempt.case_number).where(VerifyAttempt.call_id == call_id,
                                                             VerifyAttempt.result == "ok")
                     .order_by(VerifyAttempt.at.desc()).limit(1)) or ""


def status_settled_order(db: Session, ctx: WorkOrderContext, *, call_id: str, at: datetime) -> tuple[WorkOrder, bool]:
    """即办: a call that heard its case's status by self-service and needed nobody becomes a closed query order
    with the transcript and the status it heard (one per call). The caller commits."""
    key = f"status:{call_id}"
    existing = db.scalar(select(WorkOrder).where(WorkOrder.auto_key == key))
    if existing is not None:
        return existing, False
    call = db.get(Call, call_id)
    heard = [p.split(":", 2)[2] for p in (call.prompts if call is not None else []) or []
             if p.startswith(STATUS_PROMPT) and p.count(":") >= 2]
    transcript = call_transcript(db, call_id)
    case_number = verified_case_number(db, call_id) or find_case_number([x["text"] for x in transcript])
    content = f"自助查询案件进展{'（' + case_number + '）' if case_number else ''}，已收听案件状态：" + "".join(
        dict.fromkeys(heard))
    suggestion = classification.suggest(ctx, "\n".join(filter(None, ["查询案件进展", *heard])), "query")
    try:
        order = create_order(db, ctx, now=at, actor=HUB, channel="hotline", category="query",
                             subcategory=suggestion.subcategory if suggestion else "",
                             tags=classification.merged_tags(["即办"], suggestion), settled_at_once=True,
                             citizen_phone=caller_number(call.caller if call is not None else ""),
                             case_number=case_number, content=content[:4000], call_id=call_id,
                             transcript=transcript, notes=[], auto_key=key, created_by="hub",
                             note="来电人自助查询案件状态，未转人工，即时办结")
    except IntegrityError:
        existing = db.scalar(select(WorkOrder).where(WorkOrder.auto_key == key))
        assert existing is not None
        return existing, False
    if suggestion is not None:
        classification.record(db, order, suggestion.as_dict(), actor=HUB, at=at)
    return order, True


def order_of_call(db: Session, call_id: str, *, any_order: bool = True) -> WorkOrder | None:
    """The order a call filed (its hub order first, then, with ``any_order``, any other linked to it) or joined
    as a repeat contact."""
    found = db.scalar(select(WorkOrder).where(WorkOrder.auto_key == f"auto:{call_id}"))
    if found is None and any_order:
        found = db.scalar(select(WorkOrder).where(WorkOrder.call_id == call_id).order_by(WorkOrder.id).limit(1))
    if found is None:
        found = db.scalar(select(WorkOrder).join(WorkOrderContact, WorkOrderContact.order_id == WorkOrder.id)
                          .where(WorkOrderContact.call_id == call_id))
    return found


def call_has_order(db: Session, call_id: str) -> bool:
    """Whether the call filed or joined any order (an operator may then finish wrap-up)."""
    return order_of_call(db, call_id) is not None


def find_repeat(db: Session, ctx: WorkOrderContext, *, phone: str, case_number: str, at: datetime,
                exclude: int | None = None) -> tuple[WorkOrder, str] | None:
    """重复来电: the newest open order of the same number (else the same case) received within ``repeat_days``
    before ``at``, and which of the two matched; None when there is none or the setting is 0."""
    days = ctx.settings.repeat_days
    if not days:
        return None
    since = at - timedelta(days=days)
    for value, column, how in ((phone, WorkOrder.citizen_phone, "phone"), (case_number, WorkOrder.case_number,
                                                                          "case")):
        if not value:
            continue
        q = select(WorkOrder).where(column == value, WorkOrder.status != "closed", WorkOrder.created_at >= since,
                                    WorkOrder.created_at <= at)
        if exclude is not None:
            q = q.where(WorkOrder.id != exclude)
        found = db.scalar(q.order_by(WorkOrder.created_at.desc(), WorkOrder.id.desc()).limit(1))
        if found is not None:
            return found, how
    return None


REPEAT_TAG = "重复来电"


def join_order(db: Session, order: WorkOrder, *, call_id: str | None, at: datetime, matched_by: str, note: str,
               actor: Actor, channel: str = "hotline") -> WorkOrderContact | None:
    """A repeat contact joins ``order``: the contact row, the 重复来电 tag and count, a history line (once per
    call; None when the call had joined already). The caller commits."""
    if call_id is not None and db.scalar(select(WorkOrderContact).where(WorkOrderContact.call_id == call_id)):
        return None
    contact = WorkOrderContact(order_id=order.id, call_id=call_id, channel=channel, at=at, matched_by=matched_by,
                               note=note[:4000], created_by=actor.name[:64])
    db.add(contact)
    db.flush()
    why = "同一号码" if matched_by == "phone" else "同一案号"
    tags = list(order.tags or [])
    orders.record(db, order, actor=actor, action="repeat", at=at,
                  fields={"repeat_count": (order.repeat_count or 0) + 1,
                          "tags": tags if REPEAT_TAG in tags else [*tags, REPEAT_TAG]},
                  note=f"重复来电（{why}）：{note}"[:4000])
    return contact


def case_assignee(purpose: str, case: Any, settings: Any) -> str | None:
    """Where a recorded message about ``case`` goes: the judge's team (联络法官), the case's department (催办),
    the supervisors (投诉, never the team complained about); suggestions wait for a supervisor."""
    if purpose == "complaint":
        return settings.supervision_team
    if case is None:
        return None
    if purpose == "contact_judge":
        if case.judge:
            return settings.judge_team_format.format(department=case.department, judge=case.judge)[:128]
        return case.department or None
    if purpose == "urge":
        return case.department or None
    return None


def message_order(db: Session, ctx: WorkOrderContext, *, event: Any, case: Any = None,
                  case_problem: str = "") -> tuple[WorkOrder, bool]:
    """A recorded message to a judge, an urge, a complaint or a suggestion becomes an order (one per event),
    dispatched at once to the team the case names (or the supervisors for a complaint) with the category's
    feedback deadline. ``case`` is the case system's answer for ``event.case_number`` (None: not found or not
    asked), ``case_problem`` says why there is none. The caller commits."""
    key = f"msg:{event.event_id}"
    existing = db.scalar(select(WorkOrder).where(WorkOrder.auto_key == key))
    if existing is not None:
        return existing, False
    call = db.get(Call, event.call_id)
    transcript = call_transcript(db, event.call_id)
    said = event.text or (TRANSCRIBING if getattr(event, "transcript_pending", False) else NOTHING_HEARD)
    line = f"{PURPOSE_NAMES.get(event.purpose, '来电留言')}（录音 {event.recording}）：{said}"
    case_number = event.case_number or find_case_number([event.text] + [x["text"] for x in transcript])
    suggestion = classification.suggest(ctx, event.text or "", event.purpose)  # the caller chose the purpose
    try:
        order = create_order(db, ctx, now=event.ts, actor=HUB, channel="hotline", category=event.purpose,
                             subcategory=suggestion.subcategory if suggestion else "",
                             tags=classification.merged_tags(["留言"], suggestion), settled_at_once=False,
                             citizen_phone=caller_number(call.caller if call is not None else ""),
                             case_number=case_number,
                             content=line, call_id=event.call_id, transcript=transcript, notes=[], auto_key=key,
                             created_by="hub", recordings=[event.recording] if event.recording else [])
    except IntegrityError:
        existing = db.scalar(select(WorkOrder).where(WorkOrder.auto_key == key))
        assert existing is not None
        return existing, False
    if suggestion is not None:
        classification.record(db, order, suggestion.as_dict(), actor=HUB, at=event.ts)
    assignee = case_assignee(event.purpose, case, ctx.settings)
    if assignee is None:
        if case_problem:
            orders.record(db, order, actor=HUB, action="append", at=event.ts, note=case_problem + "，待人工转办")
        return order, True
    if assignee != ctx.settings.supervision_team:
        ensure_department(db, assignee, "judge_team" if event.purpose == "contact_judge" else "department")
    orders.apply_change(db, order, "dispatch", HUB, {"assignee": assignee}, ctx, event.ts)
    return order, True


def attach_transcript(db: Session, *, event: Any, message_order_purposes: frozenset[str]) -> WorkOrder | None:
    """A ``MessageTranscribed``: the transcript goes where its message's order says "（转写中）" (or after the
    recording's name), once however often it arrives. None when no order holds that message. The caller commits."""
    if event.purpose in message_order_purposes:
        order = db.scalar(select(WorkOrder).where(WorkOrder.auto_key == f"msg:{event.message_event_id}"))
    else:  # the call's own order, or the open order it joined (重复来电)
        order = order_of_call(db, event.call_id, any_order=False)
    if order is None:
        return None
    said = event.text or NOTHING_HEARD
    named = f"（录音 {event.recording}）"
    content = order.content or ""
    if f"{named}：{TRANSCRIBING}" in content:
        content = content.replace(f"{named}：{TRANSCRIBING}", f"{named}：{said}", 1)
    elif named in content and f"{named}：" not in content:
        content = content.replace(named, f"{named}：{said}", 1)
    elif f"{named}：{said}" not in content:
        content = (content + "\n" + f"留言转写{named}：{said}").strip()
    fields: dict[str, Any] = {}
    if content != order.content:
        fields["content"] = content
    if not order.case_number and event.text:
        found = find_case_number([event.text])
        if found:
            fields["case_number"] = found
    if fields and not summary_edited(db, order.id):
        fields["summary"] = call_summary(db, order.call_id, content=fields.get("content", order.content),
                                         transcript=list(order.transcript or []),
                                         case_number=fields.get("case_number", order.case_number))
    if fields:
        orders.record(db, order, actor=HUB, action="append", at=event.ts, fields=fields,
                      note=f"留言转写：{said}")
    return order


def summary_edited(db: Session, order_id: int) -> bool:
    """Whether staff corrected the order's summary (the hub then leaves it alone)."""
    return db.scalar(select(WorkOrderHistory.id).where(WorkOrderHistory.order_id == order_id,
                                                       WorkOrderHistory.action == "summary").limit(1)) is not None


def ensure_department(db: Session, name: str, kind: str) -> None:
    """The team exists as a department (so supervisors can dispatch to it again); in the caller's transaction."""

    if db.scalar(select(Department.id).where(Department.name == name)) is None:
        try:
            with db.begin_nested():  # the order's insert opened the transaction (orders.begin_write)
                db.add(Department(name=name, kind=kind, active=True))
        except IntegrityError:
            pass  # another process added it meanwhile


_MASKED = re.compile(r"\*")


def looks_masked(value: str) -> bool:
    return bool(_MASKED.search(value or ""))
