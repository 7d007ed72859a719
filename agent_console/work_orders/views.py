"""What the work-order API sends: orders, history lines, notices, attachments — masked for the reader's role.

Roles that do not see personal data in clear (``agent_console.pii``) get phone, ID and case numbers masked in
every text, the citizen's name shortened to its surname (张*) and the ID number to its ends.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from agent_console.pii import TEXT_FIELDS, mask_fields, mask_text, sees_clear
from court_cases.privacy import mask_name
from work_orders import dial_plan
from work_orders.callbacks import AFTER_HOURS_ACTION_NAMES
from work_orders.models import WorkOrder, WorkOrderAttachment, WorkOrderContact, WorkOrderHistory, WorkOrderNotice
from work_orders.reminders import KIND_NAMES, Timeline, is_overdue
from work_orders.rules import ACTION_NAMES, STATE_NAMES
from work_orders.settings import CATEGORY_NAMES, CHANNEL_NAMES

MASKED = TEXT_FIELDS | {"feedback", "message", "callback_number", "callback_refusal", "summary"}
ACTION_LABELS = ACTION_NAMES | {"create": "受理", "attach": "添加附件", "append": "补充内容",
                                "dispatch_overdue": "超时未转办", "feedback_reminder": "到期提醒",
                                "feedback_overdue": "逾期督办", "callback_due": "待回访",
                                "callback_requeued": "回访未发起", "callback_refused": "不予自动回访",
                                "sign_reminder": "签收提醒", "sign_overdue": "超时未签收", "suggest": "分类建议",
                                "summary": "修改摘要"} | AFTER_HOURS_ACTION_NAMES


def mask_id_number(v: str) -> str:
    if not v:
        return v
    return v[:4] + "*" * (len(v) - 6) + v[-2:] if len(v) > 8 else "*" * len(v)


def _iso(v: Any) -> Any:
    """Times in UTC (as every API of the hub sends them), dates as they are."""
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat()
    return v.isoformat() if isinstance(v, date) else v


def timeline(order: WorkOrder) -> Timeline:
    return Timeline(order.id, order.status, order.created_at, order.assignee, order.feedback_due, order.answered_at,
                    order.dispatch_due, order.dispatched_at)


def order_out(order: WorkOrder, role: str, *, now: datetime, calendar: Any, full: bool = True) -> dict[str, Any]:
    """An order as ``role`` may see it; ``full`` False leaves out the transcript and notes (lists)."""
    d: dict[str, Any] = {
        "id": order.id, "number": order.number, "channel": order.channel,
        "channel_name": CHANNEL_NAMES.get(order.channel, order.channel),
        "category": order.category, "category_name": CATEGORY_NAMES.get(order.category, order.category),
        "subcategory": order.subcategory, "tags": list(order.tags or []), "status": order.status,
        "status_name": STATE_NAMES.get(order.status, order.status), "settled_at_once": order.settled_at_once,
        "citizen_name": order.citizen_name, "citizen_phone": order.citizen_phone,
        "citizen_id_number": order.citizen_id_number, "case_number": order.case_number, "content": order.content,
        "call_id": order.call_id, "recordings": list(order.recordings or []), "created_by": order.created_by,
        "created_at": order.created_at, "updated_at": order.updated_at, "closed_at": order.closed_at,
        "callback_due": order.callback_due, "assignee": order.assignee, "dispatch_due": order.dispatch_due,
        "dispatched_at": order.dispatched_at, "feedback_due": order.feedback_due,
        "extension_requested": order.extension_requested, "answered_at": order.answered_at,
        "feedback": order.feedback, "feedback_late": order.feedback_late,
        "overdue": bool(order.overdue) or is_overdue(timeline(order), now, calendar),
        "callback_started_at": order.callback_started_at, "callback_attempts": order.callback_attempts,
        "next_callback_at": order.next_callback_at, "rating": order.rating, "rated_at": order.rated_at,
        "reopen_count": order.reopen_count, "repeat_count": order.repeat_count or 0, "summary": order.summary or "",
    }
    # the number an automatic callback would dial (or why it will not), visible before the first call
    verdict = dial_plan.check(order.citizen_phone or "")
    d["callback_number"], d["callback_refusal"] = verdict.number, verdict.reason
    if full:
        d["transcript"] = list(order.transcript or [])
        d["notes"] = list(order.notes or [])
    d = {k: _iso(v) for k, v in d.items()}
    if sees_clear(role):
        return d
    d = mask_fields(d, MASKED)
    d["citizen_name"] = mask_name(order.citizen_name)
    d["citizen_id_number"] = mask_id_number(order.citizen_id_number)
    return d


def history_out(h: WorkOrderHistory, role: str) -> dict[str, Any]:
    d = {"id": h.id, "at": _iso(h.at), "actor": h.actor, "role": h.role, "action": h.action,
         "action_name": ACTION_LABELS.get(h.action, h.action), "status_from": h.status_from,
         "status_to": h.status_to, "status_name": STATE_NAMES.get(h.status_to, h.status_to), "note": h.note,
         "changes": h.changes or {}}
    if sees_clear(role):
        return d
    d = mask_fields(d, MASKED)
    d["changes"] = {k: [_mask_value(k, x) for x in pair] for k, pair in (h.changes or {}).items()}
    return d


def _mask_value(key: str, v: Any) -> Any:
    if not isinstance(v, str):
        return v
    if key == "citizen_name":
        return mask_name(v)
    if key == "citizen_id_number":
        return mask_id_number(v)
    return mask_text(v) if key in MASKED else v


def notice_out(n: WorkOrderNotice, number: str | None, role: str) -> dict[str, Any]:
    d = {"id": n.id, "order_id": n.order_id, "number": number, "kind": n.kind,
         "kind_name": KIND_NAMES.get(n.kind) or ACTION_LABELS.get(n.kind, n.kind), "audience": n.audience,
         "team": n.team, "due_at": _iso(n.due_at), "created_at": _iso(n.created_at),
         "message": n.message, "read_at": _iso(n.read_at), "read_by": n.read_by}
    return d if sees_clear(role) else mask_fields(d, MASKED)


def attachment_out(a: WorkOrderAttachment) -> dict[str, Any]:
    return {"id": a.id, "order_id": a.order_id, "name": a.name, "content_type": a.content_type, "size": a.size,
            "sha256": a.sha256, "created_by": a.created_by, "created_at": _iso(a.created_at),
            "url": f"/api/work_orders/{a.order_id}/attachments/{a.id}"}


def contact_out(c: WorkOrderContact) -> dict[str, Any]:
    return {"id": c.id, "call_id": c.call_id, "channel": c.channel, "at": _iso(c.at), "matched_by": c.matched_by,
            "matched_by_name": "同一号码" if c.matched_by == "phone" else "同一案号", "created_by": c.created_by}
