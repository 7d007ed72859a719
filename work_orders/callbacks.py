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
                 "failed": "呼叫失败", "rated": "已评价"}
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
