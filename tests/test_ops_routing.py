"""Queue and routing as pure state, on a fake clock: longest idle, skills, timeouts, bridge outcomes."""

from __future__ import annotations

import itertools

import pytest

from agent_console.ops.routing import (
    BridgeRequested,
    CallConnected,
    OfferMade,
    OfferRevoked,
    PositionChanged,
    PresenceChanged,
    Router,
    RoutingError,
)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def router(clock):
    ids = (f"o{i}" for i in itertools.count(1))
    return Router(clock, offer_timeout_s=15, bridge_timeout_s=30, new_id=lambda: next(ids))


def ready(router: Router, clock: Clock, user_id: int, skills=(), after: float = 1.0) -> None:
    clock.advance(after)
    router.upsert_operator(user_id, name=f"op{user_id}", sip_uri=f"sip:op{user_id}@127.0.0.1", skills=set(skills))
    router.set_connected(user_id, True)
    router.set_presence(user_id, "ready")


def offers(effects) -> list[tuple[str, int]]:
    return [(e.offer.call_id, e.offer.user_id) for e in effects if isinstance(e, OfferMade)]


def test_longest_idle_ready_operator_gets_the_first_call(router, clock):
    ready(router, clock, 1)
    ready(router, clock, 2)
    ready(router, clock, 3)
    router.set_presence(1, "away")
    clock.advance(1)
    router.set_presence(1, "ready")  # 1 is ready again, but idle since now: the shortest
    eff = router.enqueue("c1", "w0", "consult")
    assert offers(eff) == [("c1", 2)]
    eff = router.enqueue("c2", "w0", "consult")
    assert offers(eff) == [("c2", 3)]
    eff = router.enqueue("c3", "w1", "consult")
    assert offers(eff) == [("c3", 1)]
    assert offers(router.enqueue("c4", "w1", "consult")) == []
    assert router.enqueue("c4", "w1", "consult") == []  # already queued: nothing happens
    assert [q.call_id for q in router.waiting()] == ["c1", "c2", "c3", "c4"]
    assert router.positions()["c4"] == 3


def test_skills_route_by_category_and_do_not_block_the_queue(router, clock):
    ready(router, clock, 1, skills={"complaint"})
    eff = router.enqueue("c1", "w0", "consult")  # nobody takes consult yet
    assert offers(eff) == []
    eff = router.enqueue("c2", "w0", "complaint")  # behind c1, but 1 takes complaints
    assert offers(eff) == [("c2", 1)]
    ready(router, clock, 2)  # no skills = every category
    assert offers(router.tick()) == [] and router.queue["c1"].offer.user_id == 2


def test_queue_status_positions_are_reported_when_they_change(router, clock):
    eff = router.enqueue("c1", "w0", "consult")
    assert [e for e in eff if isinstance(e, PositionChanged)] == [PositionChanged("c1", "w0", 0, 0)]
    eff = router.enqueue("c2", "w1", "consult")
    assert [e for e in eff if isinstance(e, PositionChanged)] == [PositionChanged("c2", "w1", 1, 0)]
    eff = router.leave("c1", "hangup")
    assert [e for e in eff if isinstance(e, PositionChanged)] == [PositionChanged("c2", "w1", 0, 0)]
    assert [e for e in router.tick() if isinstance(e, PositionChanged)] == []  # nothing changed: nothing sent


def test_offer_timeout_sets_the_operator_away_and_offers_the_next(router, clock):
    ready(router, clock, 1)
    ready(router, clock, 2)
    eff = router.enqueue("c1", "w0", None)
    assert offers(eff) == [("c1", 1)]
    clock.advance(14.9)
    assert router.tick() == []
    clock.advance(0.2)
    eff = router.tick()
    revoked = [e for e in eff if isinstance(e, OfferRevoked)]
    assert [(r.offer.user_id, r.reason) for r in revoked] == [(1, "timeout")]
    assert PresenceChanged(1, "away", None, "missed_offer") in eff
    assert offers(eff) == [("c1", 2)]
    assert router.operators[1].state == "away"


def test_decline_goes_to_the_next_operator_and_not_back(router, clock):
    ready(router, clock, 1)
    ready(router, clock, 2)
    router.enqueue("c1", "w0", None)
    offer = router.operators[1].offer
    eff = router.decline(1, offer.offer_id)
    assert offers(eff) == [("c1", 2)]
    assert router.operators[1].state == "ready"
    eff = router.decline(2, router.operators[2].offer.offer_id)
    assert offers(eff) == []  # both declined: it waits for someone else
    ready(router, clock, 3)
    assert router.queue["c1"].offer.user_id == 3


def test_accept_bridge_connected_then_call_end_wrap_up(router, clock):
    ready(router, clock, 1)
    router.enqueue("c1", "w0", "consult")
    router.enqueue("c2", "w0", "consult")
    offer = router.operators[1].offer
    with pytest.raises(RoutingError):
        router.accept(1, "not-this-offer")
    eff = router.accept(1, offer.offer_id)
    assert BridgeRequested("c1", "w0", offer.offer_id, "sip:op1@127.0.0.1", 1) in eff
    assert router.operators[1].state == "busy" and router.queue["c1"].state == "bridging"
    assert router.positions() == {"c1": 0, "c2": 1}  # keeps its place while the phone rings
    eff = router.bridge_update("c1", offer.offer_id, "connected")
    assert CallConnected("c1", 1, offer.offer_id) in eff
    assert PositionChanged("c2", "w0", 0, 0) in eff
    assert "c1" not in router.queue and router.operators[1].call_id == "c1"
    with pytest.raises(RoutingError):
        router.set_presence(1, "away")
    eff = router.call_ended("c1")
    assert PresenceChanged(1, "wrap_up", "c1", "call_ended") in eff
    assert offers(eff) == []  # in wrap-up: no offers
    eff = router.wrap_up_done(1)
    assert offers(eff) == [("c2", 1)]


def test_bridge_failed_puts_the_call_back_at_its_place(router, clock):
    ready(router, clock, 1)
    router.enqueue("c1", "w0", None)
    router.enqueue("c2", "w0", None)
    router.enqueue("c3", "w0", None)
    offer = router.operators[1].offer
    router.accept(1, offer.offer_id)
    eff = router.bridge_update("c1", offer.offer_id, "failed", "busy")
    assert [(e.reason) for e in eff if isinstance(e, OfferRevoked)] == ["bridge_failed"]
    assert router.operators[1].state == "away" and router.operators[1].call_id is None
    assert [q.call_id for q in router.waiting()] == ["c1", "c2", "c3"]
    assert router.positions()["c1"] == 0 and router.queue["c1"].state == "waiting"
    ready(router, clock, 2)
    assert router.queue["c1"].offer.user_id == 2  # the first in line again


def test_bridge_that_never_reports_times_out(router, clock):
    ready(router, clock, 1)
    router.enqueue("c1", "w0", None)
    router.accept(1, router.operators[1].offer.offer_id)
    clock.advance(29)
    assert router.tick() == []
    clock.advance(2)
    eff = router.tick()
    # the worker never reported: not the operator's doing, so they are offered the call again at once
    assert [e.reason for e in eff if isinstance(e, OfferRevoked)] == ["bridge_unavailable"]
    assert router.operators[1].state == "ready" and router.queue["c1"].offer.user_id == 1


@pytest.mark.parametrize("reason", ["busy", "no_answer", "declined", "not_found", "unreachable"])
def test_a_phone_that_does_not_take_the_call_sets_its_operator_away(router, clock, reason):
    ready(router, clock, 1)
    router.enqueue("c1", "w0", None)
    router.accept(1, router.operators[1].offer.offer_id)
    eff = router.bridge_update("c1", router.queue["c1"].offer.offer_id, "failed", reason)
    assert PresenceChanged(1, "away", None, "bridge_failed") in eff
    assert router.queue["c1"].state == "waiting"


@pytest.mark.parametrize("reason", ["no_slot", "busy_dialing", "dial_error: Invalid URI (PJSIP_EINVALIDURI)",
                                    "not_queued", "caller_chose_callback", "worker_not_connected", "no_sip", ""])
def test_a_bridge_the_worker_could_not_place_leaves_the_operator_ready(router, clock, reason):
    ready(router, clock, 1)  # idle since 1001
    ready(router, clock, 2, after=5.0)  # idle since 1006
    router.enqueue("c1", "w0", None)
    router.enqueue("c2", "w0", None)
    o1, o2 = router.operators[1].offer, router.operators[2].offer
    assert (o1.call_id, o2.call_id) == ("c1", "c2")
    router.accept(1, o1.offer_id)
    clock.advance(3)
    eff = router.bridge_update("c1", o1.offer_id, "failed", reason)
    assert [e.reason for e in eff if isinstance(e, OfferRevoked)] == ["bridge_unavailable"]
    assert PresenceChanged(1, "ready", None, "bridge_unavailable") in eff
    assert not [e for e in eff if isinstance(e, PresenceChanged) and e.state == "away"]
    op = router.operators[1]
    assert op.since == 1001.0  # keeps the idle time it had before accepting
    assert [q.call_id for q in router.waiting()] == ["c1", "c2"] and router.positions()["c1"] == 0
    assert offers(eff) == [("c1", 1)]  # back to the queue, and to the same operator (the only free one)
    # the worker's answer about an offer that is no longer current changes nothing
    assert router.bridge_update("c1", o1.offer_id, "failed", "busy") == []
    assert op.state == "ready"


def test_the_caller_leaving_while_the_phone_rings_leaves_the_operator_ready(router, clock):
    ready(router, clock, 1)
    router.enqueue("c1", "w0", None)
    offer = router.operators[1].offer
    router.accept(1, offer.offer_id)
    # the worker reports the leg's end (caller_hangup) before the caller's QueueLeft and CallEnded
    eff = router.bridge_update("c1", offer.offer_id, "failed", "caller_hangup")
    assert router.operators[1].state == "ready"
    eff = router.leave("c1", "hangup") + router.call_ended("c1")
    assert router.queue == {} and router.operators[1].state == "ready" and router.operators[1].offer is None
    assert not [e for e in eff if isinstance(e, PresenceChanged) and e.state == "away"]


def test_caller_leaving_revokes_the_offer_without_blaming_the_operator(router, clock):
    ready(router, clock, 1)
    router.enqueue("c1", "w0", None)
    eff = router.call_ended("c1")
    assert [e.reason for e in eff if isinstance(e, OfferRevoked)] == ["caller_left"]
    assert router.operators[1].state == "ready" and router.operators[1].offer is None
    assert router.queue == {}


def test_disconnected_or_unconfigured_operators(router, clock):
    ready(router, clock, 1)
    router.set_connected(1, False)
    assert offers(router.enqueue("c1", "w0", None)) == []
    eff = router.set_connected(1, True)
    assert offers(eff) == [("c1", 1)]
    router.operators[1].sip_uri = None
    with pytest.raises(RoutingError, match="SIP"):
        router.accept(1, router.operators[1].offer.offer_id)
    eff = router.set_presence(1, "away")  # going away with an offer revokes it
    assert [e.reason for e in eff if isinstance(e, OfferRevoked)] == ["presence"]
    assert router.queue["c1"].offer is None
    with pytest.raises(RoutingError):
        router.set_presence(1, "sleeping")
