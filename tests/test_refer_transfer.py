"""ivr/refer.py on its own: the transfer reports of the caller's phone turned into BridgeUpdates (no SIP; the
real REFER with real peers is tests/test_operator_refer.py)."""

from __future__ import annotations

import asyncio

import pjsua2 as pj
import pytest

from ivr import refer
from ivr.contract import REFER_REFUSED, REFER_REFUSED_BRIDGING, BridgeCommand, BridgeUpdate
from ivr.refer import ReferTransfer


class FakeCall:
    def __init__(self, raises: bool = False):
        self.raises = raises
        self.disconnected = False
        self.on_transfer_status = None
        self.referred: list[str] = []

    def xfer(self, target: str, prm) -> None:
        if self.raises:
            e = pj.Error()
            e.reason = "Invalid operation (PJ_EINVALIDOP)"
            raise e
        self.referred.append(target)

    def report(self, code: int, reason: str, final: bool = False) -> bool:
        return self.on_transfer_status(code, reason, final)


class FakeSession:
    call_id = "c1"

    def __init__(self, call: FakeCall):
        self.call = call
        self.ended = False
        self.events: list[tuple[str, int | None, str]] = []

    def emit(self, cls, **kw) -> None:
        assert cls is BridgeUpdate
        self.events.append((kw["state"], kw["status_code"], kw["reason"]))


def transfer(call: FakeCall | None = None, fallback: bool = True, ring_s: float = 20.0):
    session = FakeSession(call or FakeCall())
    seen: list[str] = []
    x = ReferTransfer(session, BridgeCommand(call_id="c1", offer_id="o1", target="sip:op@127.0.0.1:5099",
                                             ring_timeout_s=ring_s), "operator", lambda t: seen.append(t.state),
                      fallback)
    return x, session, seen


async def test_accepted_ringing_answered_is_connected_and_later_reports_are_dropped():
    x, s, seen = transfer()
    assert x.start() and s.call.referred == ["sip:op@127.0.0.1:5099"]
    assert s.call.report(100, "Accepted") is True
    assert s.call.report(100, "Trying") and s.call.report(180, "Ringing")
    assert s.call.report(200, "OK", final=True) is False  # no more reports wanted
    assert s.events == [("dialing", None, ""), ("connected", 200, "")] and seen == ["connected"]
    assert x.setup_s is not None and x.hands_over
    assert s.call.report(200, "OK", final=True) is False and len(s.events) == 2
    x.caller_left("transferred")  # the worker's own hang-up afterwards: nothing more to report
    assert len(s.events) == 2 and s.call.on_transfer_status is None


@pytest.mark.parametrize(("code", "reason", "expected"), [
    (486, "Busy Here", "busy"), (603, "Decline", "declined"), (408, "Request Timeout", "no_answer"),
    (404, "Not Found", "not_found"), (503, "Service Unavailable", "unreachable"),
    (500, "Server Internal Error", "server_internal_error"),
])
async def test_the_callers_call_to_the_operator_failing_uses_the_bridge_vocabulary(code, reason, expected):
    x, s, _ = transfer()
    x.start()
    s.call.report(100, "Accepted")
    s.call.report(180, "Ringing")
    assert s.call.report(code, reason, final=True) is False
    assert s.events[-1] == ("failed", code, expected) and not x.bridge_instead


@pytest.mark.parametrize("code", [405, 501, 603, 488])
async def test_a_refused_refer_falls_back_to_bridging_or_fails_refer_refused(code):
    x, s, seen = transfer()
    x.start()
    assert s.call.report(code, "no", final=True) is False
    assert s.events[-1] == ("failed", code, REFER_REFUSED_BRIDGING) and x.bridge_instead and seen == ["failed"]
    x, s, _ = transfer(fallback=False)
    x.start()
    s.call.report(code, "no", final=True)
    assert s.events[-1] == ("failed", code, REFER_REFUSED) and not x.bridge_instead


async def test_a_refer_that_cannot_be_sent_counts_as_refused():
    x, s, _ = transfer(FakeCall(raises=True))
    assert not x.start()
    assert s.events == [("dialing", None, ""), ("failed", None, REFER_REFUSED_BRIDGING)] and x.bridge_instead


async def test_no_answer_within_the_ring_time_then_a_late_success_is_only_logged(monkeypatch):
    monkeypatch.setattr(refer, "REFER_GRACE_S", 0.0)
    x, s, _ = transfer(ring_s=0.1)
    x.start()
    s.call.report(100, "Accepted")
    s.call.report(180, "Ringing")
    await asyncio.sleep(0.25)
    assert s.events[-1] == ("failed", 408, "no_answer")
    assert s.call.report(200, "OK", final=True) is False and s.events[-1] == ("failed", 408, "no_answer")


async def test_the_caller_leaving_or_choosing_a_callback_while_it_rings():
    x, s, seen = transfer()
    x.start()
    s.call.report(100, "Accepted")
    x.caller_left("caller_hangup")
    assert s.events[-1] == ("failed", None, "caller_hangup") and s.call.on_transfer_status is None
    x, s, seen = transfer()
    x.start()
    x.hangup("caller_chose_callback")
    assert s.events[-1] == ("failed", None, "caller_chose_callback") and seen == ["failed"]
    assert s.call.report(200, "OK", final=True) is False and len(s.events) == 2


async def test_a_caller_already_gone_gets_no_refer():
    call = FakeCall()
    call.disconnected = True
    x, s, _ = transfer(call)
    assert not x.start() and call.referred == [] and s.events == [("failed", None, "caller_hangup")]
    assert not x.bridge_instead
