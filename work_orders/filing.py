"""Which stored call events file (or complete) a work order, and which contacts need none: the one place that
decides it.

Every contact leaves an order (issue 16): the hub hands every newly stored event to :func:`filing_for`; a call
that ended without one of the orders those file is judged by :func:`call_end_filing` from what the call did
(:class:`CallFacts`); an operator's call is closed at wrap-up with an order or one of :data:`NO_ORDER_REASONS`.
A restarted hub looks again at the recent events of :data:`RECHECKED_TYPES` (an order lost between storing the
event and filing it; each order has a unique key, so one already filed is not filed twice). Events are read by
attribute (``type``, ``outcome``, ``purpose``, ``cause``), so this module needs no import of the event contract
(``ivr.contract``); ``tests/test_work_order_filing.py`` checks every event type of the contract against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Filing(StrEnum):
    """What the hub does with an event that files an order."""

    #: the caller asked to be called back from the queue (or waited too long and was promised a call): an order
    #: with a callback due (``auto:<call>``)
    CALLBACK = "callback"
    #: the caller hung up in the queue (or no hub answered the handoff): the same, kind ``missed`` (未接通回拨)
    MISSED = "missed"
    #: a message left after hours: the same, kind ``after_hours``
    AFTER_HOURS = "after_hours"
    #: a message asking for a callback: the same, kind ``message``
    MESSAGE = "message"
    #: a message to a judge, an urge, a complaint or a suggestion: an order dispatched with the category's
    #: deadline (``msg:<event>``), looked up in the case system on the hub's background writer
    ROUTED_MESSAGE = "routed_message"
    #: the transcript of a message reported earlier: it goes into that message's order
    TRANSCRIPT = "transcript"
    #: the knowledge base answered and the caller hung up content: a closed consult order (即办)
    KB_SETTLED = "kb_settled"
    #: any other end of a call: what the call did decides (:func:`call_end_filing`)
    CALL_ENDED = "call_ended"
    #: the caller heard the case's status and needed nobody: a closed query order (即办) with the transcript
    STATUS_SETTLED = "status_settled"
    #: a callback (回访) ended: rate the order, or try again later (the callbacks dispatcher's rules)
    CALLBACK_OUTCOME = "callback_outcome"
    #: a final line of a call's transcript: orders already filed from that call get it too (the last words
    #: of a bridged call may be recognized after the operator filed the order)
    CALL_LINE = "call_line"


#: messages that become an order of their own category, dispatched to a team
ROUTED_PURPOSES = frozenset({"contact_judge", "urge", "complaint", "suggestion"})
#: the cause of a call the knowledge base settled
KB_CAUSE = "answered_by_kb"
#: queue outcomes that promise a callback, and those of a caller nobody answered
CALLBACK_OUTCOMES = frozenset({"callback", "max_wait"})
MISSED_OUTCOMES = frozenset({"hangup", "no_hub"})
#: the event types a restarted hub files again when their order is missing (callback outcomes are recovered by
#: the callbacks dispatcher itself; transcripts are not looked at again)
RECHECKED_TYPES = frozenset({"queue_left", "message_recorded", "call_ended"})
#: auto orders' kind per filing (``ensure_auto_order``'s ``kind``)
AUTO_KINDS = {Filing.CALLBACK: "callback", Filing.MISSED: "missed", Filing.AFTER_HOURS: "after_hours",
              Filing.MESSAGE: "message"}
#: prompts whose name starts so read a verified case's status to the caller (``ivr.case_dialog``)
STATUS_PROMPT = "case_status:"
#: an operator may finish wrap-up without an order only for one of these (骚扰, 误拨, 无声)
NO_ORDER_REASONS = {"nuisance": "骚扰电话", "misdial": "误拨", "silent": "无声电话"}


@dataclass(frozen=True)
class CallFacts:
    """What an ended call did, as its record and events say."""

    status_heard: bool  # the IVR read a verified case's status (a ``case_status:`` prompt played)
    reached_operator: bool  # an operator's phone was connected (the operator files at wrap-up)
    has_order: bool  # the call already filed or joined an order (message, callback, 未接通, KB)


def filing_for(e: Any) -> Filing | None:
    """What the stored event ``e`` files, or None (most events file nothing)."""
    t = getattr(e, "type", None)
    if t == "queue_left":
        if e.outcome in CALLBACK_OUTCOMES:
            return Filing.CALLBACK
        return Filing.MISSED if e.outcome in MISSED_OUTCOMES else None
    if t == "message_recorded":
        if e.purpose == "after_hours":
            return Filing.AFTER_HOURS
        if e.purpose == "callback":
            return Filing.MESSAGE
        return Filing.ROUTED_MESSAGE if e.purpose in ROUTED_PURPOSES else None
    if t == "message_transcribed":
        return Filing.TRANSCRIPT
    if t == "call_ended":
        return Filing.KB_SETTLED if e.cause == KB_CAUSE else Filing.CALL_ENDED
    if t == "callback_outcome":
        return Filing.CALLBACK_OUTCOME
    if t == "speech_heard":
        return Filing.CALL_LINE if e.kind == "final" and e.text else None
    return None


def call_end_filing(facts: CallFacts) -> Filing | None:
    """What an ended call (not settled by the knowledge base) files from what it did: a status heard with no
    operator and no other order is settled at once; everything else filed its order on the way (or the operator
    does at wrap-up)."""
    if facts.status_heard and not facts.reached_operator and not facts.has_order:
        return Filing.STATUS_SETTLED
    return None


def status_heard(prompts: list[str]) -> bool:
    return any(p.startswith(STATUS_PROMPT) for p in prompts)
