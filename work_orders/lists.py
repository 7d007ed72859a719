"""The four lists of the closed loop (issue 16, part 5): which orders each holds, why, who sees it and who acts.

- 报告单 ``report`` — what the court's leaders must see, orders received in the period: complaints about named staff
  (a complaint filed under 工作作风 or 审判执行, or naming a judge, clerk or other staff), repeat callers
  (重复来电), callbacks rated poorly, orders reopened twice or more. Supervisors and admins; leaders read it,
  the supervisors act on the orders.
- 督办单 ``supervision`` — open orders past a deadline (dispatch, 签收 or feedback), reopened, or with an
  extension to approve. Supervisors and admins act (转办, 批准/驳回延期, 重新办理).
- 核查单 ``verification`` — complaints not yet closed: to be verified before an answer goes out. Supervisors and
  admins act (they keep complaints; never the team complained about).
- 回访单 ``callbacks`` — callbacks due: answered orders waiting for the rated callback (``next_callback_at``
  passed), and callback requests, after-hours messages and callers who hung up in the queue (``callback_due``
  today or earlier, not yet dispatched or settled; an after-hours message until its callback reached the caller,
  dispatched or not: with ``auto_callback`` on the dispatcher places it, see
  ``agent_console.work_orders.after_hours_callbacks``). Operators, supervisors and admins act (回访, 评价).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, false, or_

from work_orders.callbacks import AFTER_HOURS_LINE, AFTER_HOURS_STATES
from work_orders.models import WorkOrder
from work_orders.settings import WorkOrderSettings

STAFF_WORDS = ("法官", "书记员", "庭长", "院长", "执行员", "审判员", "法官助理", "法警", "工作人员", "窗口人员")
STAFF_SUBCATEGORIES = ("工作作风", "审判执行")
_STAFF = re.compile("|".join(STAFF_WORDS))
OPEN = ("received", "dispatched", "in_progress", "answered", "callback", "reopened")
CALLBACK_KINDS = {"来电人在排队时选择回电": "来电人要求回电", "非工作时间来电留言": "非工作时间留言",
                  "来电人排队等待时挂机": "未接通回拨", "来电人留言": "来电留言"}


@dataclass(frozen=True)
class OrderList:
    kind: str
    title: str
    rule: str
    viewers: frozenset[str]
    actors: str  # who may act on its orders, for people


SUPERVISORS = frozenset({"supervisor", "admin"})
LISTS: dict[str, OrderList] = {
    "report": OrderList("report", "报告单",
                        "期间内受理的：涉及工作人员的投诉、重复来电、回访不满意、重办两次以上的工单",
                        SUPERVISORS, "院领导阅示，督办人员处理"),
    "supervision": OrderList("supervision", "督办单",
                             "未办结且超过转办、签收或反馈期限，重新办理，或有待审批延期的工单",
                             SUPERVISORS, "督办人员：转办、批准或驳回延期、重新办理"),
    "verification": OrderList("verification", "核查单", "尚未办结的投诉信访工单，答复前须核查",
                              SUPERVISORS, "督办人员：核查后转办或答复，不交被投诉部门"),
    "callbacks": OrderList("callbacks", "回访单",
                           "已反馈待回访的工单，以及应回电的来电（要求回电、非工作时间留言、未接通回拨）",
                           frozenset({"operator", "supervisor", "admin"}), "接线员、督办人员：回访、记录满意度"),
}


def _staff_complaint():
    W = WorkOrder
    return and_(W.category == "complaint", or_(*[W.subcategory.like(f"{s}%") for s in STAFF_SUBCATEGORIES],
                                               *[W.content.like(f"%{w}%") for w in STAFF_WORDS]))


def conditions(kind: str, *, now: datetime, today: date, settings: WorkOrderSettings,
               overdue: Any = None) -> Any:
    """The SQL condition of list ``kind``; ``overdue`` is the hub's overdue condition (deadlines passed)."""
    W = WorkOrder
    if kind == "report":
        return or_(_staff_complaint(), W.repeat_count > 0, W.rating <= settings.poor_rating_max, W.reopen_count >= 2)
    if kind == "supervision":
        return and_(W.status != "closed", or_(overdue if overdue is not None else false(), W.overdue.is_(True),
                                              W.status == "reopened", W.extension_requested.is_not(None)))
    if kind == "verification":
        return and_(W.category == "complaint", W.status != "closed")
    if kind == "callbacks":
        return or_(and_(W.status.in_(("answered", "callback")),
                        or_(W.next_callback_at.is_(None), W.next_callback_at <= now)),
                   and_(W.status.in_(("received", "reopened")), W.callback_due.is_not(None), W.callback_due <= today),
                   # the callback promised to an after-hours caller stands after the order is dispatched
                   and_(W.status.in_(AFTER_HOURS_STATES), W.content.like(f"{AFTER_HOURS_LINE}%"),
                        W.callback_due.is_not(None), W.callback_due <= today))
    raise KeyError(kind)


def reasons(kind: str, o: WorkOrder, *, now: datetime, today: date, settings: WorkOrderSettings,
            overdue: bool = False) -> list[str]:
    """Why ``o`` is on list ``kind``, in Chinese (one or more)."""
    out: list[str] = []
    if kind == "report":
        if o.category == "complaint" and (o.subcategory.startswith(STAFF_SUBCATEGORIES)
                                          or _STAFF.search(o.content or "")):
            out.append("涉及工作人员的投诉")
        if o.repeat_count:
            out.append(f"重复来电{o.repeat_count}次")
        if o.rating is not None and o.rating <= settings.poor_rating_max:
            out.append(f"回访评价{o.rating}分")
        if o.reopen_count >= 2:
            out.append(f"重办{o.reopen_count}次")
    elif kind == "supervision":
        if overdue or o.overdue:
            out.append("超期")
        if o.status == "reopened":
            out.append("重新办理")
        if o.extension_requested:
            out.append(f"申请延期{o.extension_requested}个工作日待审批")
    elif kind == "verification":
        out.append("投诉待核查" if o.status in ("received", "reopened") else "投诉办理中，答复前核查")
    elif kind == "callbacks":
        if o.status in ("answered", "callback"):
            out.append(f"办理结果待回访（已回访{o.callback_attempts}次）" if o.callback_attempts else "办理结果待回访")
        else:
            first = (o.content or "").split("\n", 1)[0]
            what = next((v for k, v in CALLBACK_KINDS.items() if first.startswith(k)), "应回电")
            out.append(f"{what}，应于{o.callback_due:%m月%d日}回电" if o.callback_due else what)
    return out
