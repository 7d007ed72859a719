"""Which moves a work order may make, who may make them, and what each move sets.

States: received (接诉) → dispatched (转办) → in_progress (办理中) → answered (已反馈) → callback (回访中)
→ closed (办结); reopened (重办) goes back to dispatch. Items settled during the call are closed at
once (``settle``) and counted as 即办. :func:`apply` checks a move against the table below and
returns the change to store, or raises :class:`Refused` with a reason in Chinese for the person who
tried (the API answers 409 with it, the page shows it); nothing is changed by a refused move.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from work_orders.calendar import WorkCalendar
from work_orders.settings import CATEGORIES, WorkOrderSettings

STATES = ("received", "dispatched", "in_progress", "answered", "callback", "closed", "reopened")
STATE_NAMES = {"received": "已受理", "dispatched": "已转办", "in_progress": "办理中", "answered": "已反馈",
               "callback": "回访中", "closed": "已办结", "reopened": "重新办理"}
STAFF = frozenset({"operator", "supervisor", "admin"})
SUPERVISORS = frozenset({"supervisor", "admin"})


class Refused(Exception):
    """A move the rules do not allow; ``message`` is for people (Simplified Chinese)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


@dataclass(frozen=True)
class Order:
    """What the rules need to know of an order (a snapshot, not the database row)."""

    status: str
    category: str
    received_at: datetime
    assignee: str | None = None
    feedback_due: datetime | None = None
    extension_requested: int | None = None
    callback_attempts: int = 0


@dataclass(frozen=True)
class Actor:
    name: str
    role: str  # operator / supervisor / admin / handler / system
    team: str | None = None  # a handler's department or judge's team


@dataclass
class Change:
    """What to store: new values of order fields, and the history line (who/when/what)."""

    action: str
    status: str
    fields: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    alerts: list[str] = field(default_factory=list)  # who must be told: "supervisor", "assignee"


@dataclass(frozen=True)
class Move:
    sources: frozenset[str]
    target: str | None  # None: status unchanged
    roles: frozenset[str]


MOVES: dict[str, Move] = {
    "settle": Move(frozenset({"received"}), "closed", STAFF | {"system"}),
    "dispatch": Move(frozenset({"received", "reopened"}), "dispatched", STAFF | {"system"}),  # system: by the case
    "accept": Move(frozenset({"dispatched"}), "in_progress", frozenset({"handler"}) | SUPERVISORS),
    "return": Move(frozenset({"dispatched", "in_progress"}), "received", frozenset({"handler"}) | SUPERVISORS),
    "request_extension": Move(frozenset({"dispatched", "in_progress"}), None, frozenset({"handler"})),
    "approve_extension": Move(frozenset({"dispatched", "in_progress"}), None, SUPERVISORS),
    "reject_extension": Move(frozenset({"dispatched", "in_progress"}), None, SUPERVISORS),
    "answer": Move(frozenset({"dispatched", "in_progress"}), "answered", frozenset({"handler"}) | SUPERVISORS),
    "start_callback": Move(frozenset({"answered", "callback"}), "callback", STAFF | {"system"}),  # again: a retry
    "callback_failed": Move(frozenset({"callback"}), None, STAFF | {"system"}),  # not reached: retry later
    "rate": Move(frozenset({"callback"}), None, STAFF | {"system"}),  # closes or reopens by the rating
    "close_unreached": Move(frozenset({"callback"}), "closed", SUPERVISORS),
    "reopen": Move(frozenset({"closed", "answered", "callback"}), "reopened", SUPERVISORS),
}
ACTION_NAMES = {"settle": "即时办结", "dispatch": "转办", "accept": "签收", "return": "退回", "answer": "反馈",
                "request_extension": "申请延期", "approve_extension": "批准延期", "reject_extension": "驳回延期",
                "start_callback": "回访", "callback_failed": "回访未成功", "rate": "满意度评价",
                "close_unreached": "无法回访办结", "reopen": "重新办理", "repeat": "重复来电"}


def _text(payload: dict[str, Any], key: str, what: str, limit: int = 4000) -> str:
    v = str(payload.get(key) or "").strip()
    if not v:
        raise Refused(f"missing_{key}", f"请填写{what}")
    if len(v) > limit:
        raise Refused(f"long_{key}", f"{what}不能超过{limit}字")
    return v


def apply(order: Order, action: str, actor: Actor, payload: dict[str, Any], now: datetime,
          calendar: WorkCalendar, settings: WorkOrderSettings) -> Change:
    move = MOVES.get(action)
    if move is None:
        raise Refused("unknown_action", f"未知操作：{action}")
    name = ACTION_NAMES[action]
    if order.status not in move.sources:
        raise Refused("wrong_state", f"工单当前状态为“{STATE_NAMES.get(order.status, order.status)}”，不能{name}")
    if actor.role not in move.roles:
        raise Refused("forbidden", f"当前角色不能{name}")
    if actor.role == "handler" and action != "dispatch" and order.assignee and actor.team != order.assignee:
        raise Refused("not_assignee", "该工单不是转办给本部门的")
    change = Change(action=action, status=move.target or order.status)

    if action == "settle":
        change.fields.update(settled_at_once=True, closed_at=now)
        change.note = _text(payload, "note", "办结说明") if payload.get("note") else "通话中即时办结"
    elif action == "dispatch":
        assignee = _text(payload, "assignee", "承办部门", 128)
        days = settings.feedback_workdays[order.category]
        change.fields.update(assignee=assignee, dispatched_at=now, feedback_due=calendar.due_after(now, days),
                             extension_requested=None)
        change.note = f"转办至{assignee}，{days}个工作日内反馈"
        change.alerts.append("assignee")
    elif action == "accept":
        change.note = "已签收"
    elif action == "return":
        change.note = _text(payload, "reason", "退回原因")
        change.fields.update(assignee=None, feedback_due=None, extension_requested=None)
        change.alerts.append("supervisor")
    elif action == "request_extension":
        if order.extension_requested:
            raise Refused("extension_pending", "已有待审批的延期申请")
        try:
            days = int(payload.get("workdays", 0))
        except (TypeError, ValueError):
            days = 0
        if not 1 <= days <= settings.max_extension_workdays:
            raise Refused("bad_extension", f"延期天数须为1至{settings.max_extension_workdays}个工作日")
        change.fields["extension_requested"] = days
        change.note = f"申请延期{days}个工作日：{_text(payload, 'reason', '延期理由')}"
        change.alerts.append("supervisor")
    elif action in ("approve_extension", "reject_extension"):
        if not order.extension_requested:
            raise Refused("no_extension", "没有待审批的延期申请")
        change.fields["extension_requested"] = None
        if action == "approve_extension":
            base = order.feedback_due or now
            due = calendar.close_of(calendar.add_workdays(calendar.local_date(base), order.extension_requested))
            change.fields["feedback_due"] = due
            change.note = f"批准延期{order.extension_requested}个工作日"
        else:
            change.note = "驳回延期：" + _text(payload, "reason", "驳回理由")
        change.alerts.append("assignee")
    elif action == "answer":
        change.fields.update(feedback=_text(payload, "feedback", "办理结果"), answered_at=now,
                             extension_requested=None)
        change.fields["feedback_late"] = bool(order.feedback_due and now > order.feedback_due)
        change.note = "已反馈办理结果"
    elif action == "start_callback":
        change.fields["callback_started_at"] = now
        change.note = "开始回访" if order.status == "answered" else f"第{order.callback_attempts + 1}次回访"
    elif action == "callback_failed":
        reason = str(payload.get("reason") or "未接通").strip()[:200]
        n, retries = max(order.callback_attempts, 1), settings.callback_retry_minutes
        if n <= len(retries):
            change.fields["next_callback_at"] = now + timedelta(minutes=retries[n - 1])
            change.note = f"第{n}次回访未成功（{reason}），{retries[n - 1]}分钟后再次回访"
        else:
            change.fields["next_callback_at"] = None
            change.note = f"第{n}次回访未成功（{reason}），不再自动回访，请督办人员处理"
            change.alerts.append("supervisor")
    elif action == "rate":
        try:
            rating = int(payload.get("rating"))
        except (TypeError, ValueError):
            rating = 0
        if not 1 <= rating <= 5:
            raise Refused("bad_rating", "满意度评价须为1至5分")
        change.fields.update(rating=rating, rated_at=now)
        if rating <= settings.poor_rating_max:
            change.status = "reopened"
            change.fields.update(reopen_count_delta=1)
            change.note = f"回访评价{rating}分（不满意），工单重新办理"
            change.alerts.append("supervisor")
        else:
            change.status = "closed"
            change.fields["closed_at"] = now
            change.note = f"回访评价{rating}分，工单办结"
    elif action == "close_unreached":
        change.fields["closed_at"] = now
        change.note = "多次回访未接通：" + _text(payload, "reason", "说明")
    elif action == "reopen":
        change.fields.update(reopen_count_delta=1, closed_at=None)
        change.note = "重新办理：" + _text(payload, "reason", "重新办理原因")
        change.alerts.append("supervisor")
    return change


def dispatch_due(order: Order, calendar: WorkCalendar) -> datetime:
    """当天转办: when dispatch of a received order is due."""
    return calendar.same_day_due(order.received_at)


def remind_at(due: datetime, settings: WorkOrderSettings) -> datetime:
    return due - timedelta(hours=settings.remind_before_hours)


def check_category(category: str) -> str:
    if category not in CATEGORIES:
        raise Refused("bad_category", f"未知的工单类别：{category}")
    return category
