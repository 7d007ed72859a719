"""回访 by an outbound call: the rules the hub's callbacks dispatcher (``agent_console.work_orders.callbacks``)
follows — what the citizen hears of the handler's answer, how an outcome reads in the order's history, which
failures put the order back due at once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from work_orders.rules import Actor

AUTO = Actor("自动回访", "system")
#: why a callback did not reach a rating, as the history line says it
OUTCOME_NAMES = {"no_answer": "无人接听", "busy": "占线", "rejected": "拒接", "no_rating": "未评价",
                 "failed": "呼叫失败", "rated": "已评价", "reached": "已接听"}
#: worker-side reasons: the citizen's phone was never called, so the order goes back due soon
NOT_PLACED = frozenset({"no_slot", "draining"})
REQUEUE_DELAY = timedelta(minutes=1)
SUMMARY_MAX = 1000
SENTENCE_ENDS = "。！？；!?;"


def spoken_summary(feedback: str) -> str:
    """The handler's answer as spoken (whitespace folded), at most 1000 characters, cut after a sentence."""
    text = " ".join(feedback.split())
    if len(text) <= SUMMARY_MAX:
        return text
    cut = max(text.rfind(p, 0, SUMMARY_MAX) for p in SENTENCE_ENDS)
    return text[:cut + 1] if cut >= SUMMARY_MAX // 4 else text[:SUMMARY_MAX]


def outcome_reason(e: Any) -> str:
    """How a ``CallbackOutcome`` (``ivr.contract``) reads in the order's history line."""
    what = OUTCOME_NAMES.get(e.outcome, e.outcome)
    detail = [str(e.status_code)] if e.status_code else []
    if e.reason and e.outcome == "failed":
        detail.append(e.reason)
    return f"{what}（{'，'.join(detail)}）" if detail else what


# ------------------------------------------------------------------------------------ after-hours callbacks
#: an after-hours message's order (agent_console.work_orders.service.MESSAGE_LINES["after_hours"]) starts so
AFTER_HOURS_LINE = "非工作时间来电留言"
#: an after-hours callback is placed while its order is not yet answered (an answered order gets the rated one)
AFTER_HOURS_STATES = ("received", "dispatched", "in_progress", "reopened")
#: its history actions: started (by AUTO), not reached (retry or give up), reached (``callback_due`` cleared)
AH_START, AH_FAILED, AH_DONE = "after_hours_callback", "after_hours_callback_failed", "after_hours_callback_done"
AFTER_HOURS_ACTION_NAMES = {AH_START: "留言回电", AH_FAILED: "留言回电未接通", AH_DONE: "已留言回电"}


def after_hours_failure(attempt: int, retry_minutes: list[int], reason: str) -> tuple[int | None, str, bool]:
    """An after-hours callback not reached: (minutes until the next try or None, the history note, alert the
    supervisors) — the same retry schedule as the rated callbacks (``work_orders.callback_retry_minutes``)."""
    if attempt <= len(retry_minutes):
        wait = retry_minutes[attempt - 1]
        return wait, f"第{attempt}次留言回电未接通（{reason}），{wait}分钟后再次回电", False
    return None, f"第{attempt}次留言回电未接通（{reason}），不再自动回电，请人工回电", True
