"""Which stored call events file (or complete) a work order: the one place that decides it.

The hub hands every newly stored event to :func:`filing_for`; a restarted hub looks again at the recent events
of :data:`RECHECKED_TYPES` (an order lost between storing the event and filing it; each order has a unique key,
so one already filed is not filed twice). Events are read by attribute
(``type``, ``outcome``, ``purpose``, ``cause``), so this module needs no import of the event contract
(``ivr.contract``); ``tests/test_work_order_filing.py`` checks every event type of the contract against it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Filing(StrEnum):
    """What the hub does with an event that files an order."""

    #: the caller asked to be called back from the queue: an order with a callback due (``auto:<call>``)
    CALLBACK = "callback"
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
    #: a callback (回访) ended: rate the order, or try again later (the callbacks dispatcher's rules)
    CALLBACK_OUTCOME = "callback_outcome"
    #: a final line of a call's transcript: orders already filed from that call get it too (the last words
    #: of a bridged call may be recognized after the operator filed the order)
    CALL_LINE = "call_line"


#: messages that become an order of their own category, dispatched to a team
ROUTED_PURPOSES = frozenset({"contact_judge", "urge", "complaint", "suggestion"})
#: the cause of a call the knowledge base settled
KB_CAUSE = "answered_by_kb"
#: the event types a restarted hub files again when their order is missing (callback outcomes are recovered by
#: the callbacks dispatcher itself; transcripts are not looked at again)
RECHECKED_TYPES = frozenset({"queue_left", "message_recorded", "call_ended"})
#: auto orders' kind per filing (``ensure_auto_order``'s ``kind``)
AUTO_KINDS = {Filing.CALLBACK: "callback", Filing.AFTER_HOURS: "after_hours", Filing.MESSAGE: "message"}


def filing_for(e: Any) -> Filing | None:
    """What the stored event ``e`` files, or None (most events file nothing)."""
    t = getattr(e, "type", None)
    if t == "queue_left":
        return Filing.CALLBACK if e.outcome == "callback" else None
    if t == "message_recorded":
        if e.purpose == "after_hours":
            return Filing.AFTER_HOURS
        if e.purpose == "callback":
            return Filing.MESSAGE
        return Filing.ROUTED_MESSAGE if e.purpose in ROUTED_PURPOSES else None
    if t == "message_transcribed":
        return Filing.TRANSCRIPT
    if t == "call_ended":
        return Filing.KB_SETTLED if e.cause == KB_CAUSE else None
    if t == "callback_outcome":
        return Filing.CALLBACK_OUTCOME
    if t == "speech_heard":
        return Filing.CALL_LINE if e.kind == "final" and e.text else None
    return None
