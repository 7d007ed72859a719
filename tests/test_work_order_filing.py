"""Which stored events file a work order: every event type of the worker/hub contract, checked against the one
place that decides it (``work_orders.filing``). A new event type must be added here, so its filing is decided."""

from __future__ import annotations

import typing

import pytest

from ivr import contract as c
from work_orders.filing import RECHECKED_TYPES, CallFacts, Filing, call_end_filing, filing_for, status_heard

EVENT_CLASSES = typing.get_args(typing.get_args(c.CallEvent)[0])
BASE = {"call_id": "c1", "worker": "w0"}
MSG = {**BASE, "node": "n", "recording": "c1.wav", "duration_s": 3.0}

#: (event, what it files) for every value of the fields that decide it
CASES: list[tuple[typing.Any, Filing | None]] = [
    (c.CallOffered(**BASE, caller="13812345678", callee="12368", source="10.0.0.1:5060"), None),
    (c.CallRejected(**BASE, status_code=486, reason="busy"), None),
    (c.CallAnswered(**BASE), None),
    (c.MenuEntered(**BASE, node="main"), None),
    (c.DigitsReceived(**BASE, node="main", digits="1"), None),
    (c.PromptPlayed(**BASE, node="main", prompt="p", played_ms=1, duration_ms=1), None),
    *[(c.SpeechHeard(**BASE, node="main", kind=k, text="怎么立案" if k != "started" else ""),
       Filing.CALL_LINE if k == "final" else None)
      for k in typing.get_args(c.SpeechHeard.model_fields["kind"].annotation)],
    (c.SpeechHeard(**BASE, node="main", kind="final", text=""), None),
    (c.KbDecided(**BASE, node="kb", decision="answer", faq_id="f1"), None),
    (c.KbClarified(**BASE, node="kb", offered=["f1", "f2"], picked="f1"), None),
    (c.MenuSpeech(**BASE, node="main", text="立案", outcome="option"), None),
    (c.HandoffRequested(**BASE, node="main", reason="caller_asked"), None),
    (c.QueueJoined(**BASE, node="queue", reason="caller_asked"), None),
    *[(c.QueueLeft(**BASE, node="queue", outcome=o), {"callback": Filing.CALLBACK, "max_wait": Filing.CALLBACK,
                                                       "hangup": Filing.MISSED, "no_hub": Filing.MISSED}.get(o))
      for o in typing.get_args(c.QueueLeft.model_fields["outcome"].annotation)],
    (c.BridgeUpdate(**BASE, offer_id="o1", target="sip:op@x", state="connected"), None),
    *[(c.MessageRecorded(**MSG, purpose=p), {"after_hours": Filing.AFTER_HOURS, "callback": Filing.MESSAGE}.get(
        p, Filing.ROUTED_MESSAGE)) for p in typing.get_args(c.MessagePurpose)],
    *[(c.MessageTranscribed(**BASE, node="n", message_event_id="e1", purpose=p, recording="c1.wav"),
       Filing.TRANSCRIPT) for p in typing.get_args(c.MessagePurpose)],
    *[(c.CallbackOutcome(**BASE, order_id=1, attempt=1, outcome=o, rating=5 if o == "rated" else None),
       Filing.CALLBACK_OUTCOME) for o in typing.get_args(c.CallbackOutcome.model_fields["outcome"].annotation)],
    (c.CallEnded(**BASE, cause="answered_by_kb", side="caller"), Filing.KB_SETTLED),
    *[(c.CallEnded(**BASE, cause=cause, side="caller"), Filing.CALL_ENDED)
      for cause in ("caller_hangup", "ivr_hangup", "after_hours_message", "worker_lost", "transferred")],
    (c.WorkerLost(worker="w0"), None),
]


def test_every_event_type_of_the_contract_is_decided():
    assert len(EVENT_CLASSES) >= 19  # the union unpacked, not a single class
    assert {type(e) for e, _ in CASES} == set(EVENT_CLASSES)


@pytest.mark.parametrize(("event", "filing"), CASES, ids=lambda x: getattr(x, "type", str(x)))
def test_what_each_event_files(event, filing):
    assert filing_for(event) is filing


def test_a_restarted_hub_rechecks_only_types_that_file_orders():
    filed = {e.type for e, f in CASES if f is not None}
    assert filed >= RECHECKED_TYPES
    assert filed - RECHECKED_TYPES == {"message_transcribed", "callback_outcome", "speech_heard"}


def test_an_ended_call_files_a_status_order_only_when_the_status_was_all_it_needed():
    heard = status_heard(["welcome", "case_status:1:您查询的案件，", "case_status_menu"])
    assert heard and not status_heard(["welcome", "case_status_menu", "case_readback:abc"])
    assert call_end_filing(CallFacts(status_heard=True, reached_operator=False, has_order=False)) \
        is Filing.STATUS_SETTLED
    for facts in (CallFacts(True, True, False), CallFacts(True, False, True), CallFacts(False, False, False)):
        assert call_end_filing(facts) is None, facts
