"""The operator queue and its routing, as pure state: no I/O, no FastAPI, time from a clock.

Every method changes the state and returns the *effects* the hub must carry out (tell browsers, send
worker commands); the hub holds one :class:`Router` behind a lock.

- Callers wait in join order (the time their worker reported). A call under offer or being bridged keeps its
  place, so a failed bridge puts it back exactly where it was. ``position`` = callers ahead of it.
- An offer goes to the ``ready``, connected operator without an offer or call who has been idle longest
  and whose skills include the call's category (no skills = every category), skipping operators who
  declined this call. Calls are offered in queue order; a call no free operator can take does not hold
  up the calls behind it.
- An offer not answered within ``offer_timeout_s`` is revoked and its operator set ``away`` (missed).
- Accept → the operator is ``busy`` on the call and the worker is asked to ring the operator's phone;
  bridge ``connected`` → the call leaves the queue; ``failed`` → the call waits again at its place. When
  the operator's phone refused or missed the call (:data:`PHONE_FAILURES`: busy, no answer, declined, unknown
  or unreachable address, no common codec) the operator goes ``away``; any other reason is the worker's or the
  caller's (no free call slot, a dial already running, a dial error, the caller left or chose a callback;
  also no word from the worker within ``bridge_timeout_s``) and the operator is ``ready`` again, keeping
  the idle time they had before accepting.
- The call ends (or the bridge does) → the operator is in ``wrap_up`` until ``wrap_up_done``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Presence = Literal["ready", "busy", "wrap_up", "away"]
PRESENCES: tuple[str, ...] = ("ready", "busy", "wrap_up", "away")


#: reasons of a failed bridge that mean the operator's phone did not take the call (ivr.bridge.FAILURE_REASONS)
PHONE_FAILURES = frozenset({"busy", "no_answer", "declined", "not_found", "unreachable", "no_common_codec"})


def phone_failed(reason: str) -> bool:
    """Is a failed bridge the operator's phone's doing (set them away), not the worker's or the caller's?

    Only the reasons the worker derives from the phone's SIP answer count; anything else (``no_slot``,
    ``busy_dialing``, ``dial_error: ...``, ``not_queued``, ``caller_chose_callback``, ``caller_hangup``, a
    reason this hub does not know) leaves the operator ready: a wrongly "away" operator silently stops taking
    calls, a wrongly "ready" one at worst sees the same offer again.
    """
    return reason in PHONE_FAILURES


class RoutingError(ValueError):
    """A command that cannot be carried out; the message is for the operator (Chinese)."""


@dataclass
class Offer:
    offer_id: str
    call_id: str
    user_id: int
    made_at: float
    expires_at: float
    accepted_at: float | None = None
    bridge_deadline: float | None = None
    idle_since: float | None = None  # the operator's idle-since before accepting (restored if not their fault)


@dataclass
class QueuedCall:
    call_id: str
    worker: str
    category: str | None
    reason: str
    joined_at: float
    order: int
    offer: Offer | None = None
    declined: set[int] = field(default_factory=set)

    @property
    def state(self) -> str:
        if self.offer is None:
            return "waiting"
        return "bridging" if self.offer.accepted_at is not None else "offered"


@dataclass
class Operator:
    user_id: int
    name: str = ""
    sip_uri: str | None = None
    skills: frozenset[str] = frozenset()
    state: Presence = "away"
    since: float = 0.0  # when the current state began (for ready: idle since)
    call_id: str | None = None  # the call being bridged, talked or wrapped up
    offer: Offer | None = None  # an offer waiting for an answer
    connected: bool = False
    reason: str = ""  # why the state last changed (missed_offer, bridge_failed, ...)

    def takes(self, category: str | None) -> bool:
        return not self.skills or category is None or category in self.skills


# ------------------------------------------------------------------------------------------- effects
@dataclass(frozen=True)
class OfferMade:
    offer: Offer
    call: QueuedCall


@dataclass(frozen=True)
class OfferRevoked:
    offer: Offer
    reason: str  # timeout, declined, caller_left, presence, bridge_failed (the phone), bridge_unavailable (not)


@dataclass(frozen=True)
class BridgeRequested:
    call_id: str
    worker: str
    offer_id: str
    target: str
    user_id: int


@dataclass(frozen=True)
class PresenceChanged:
    user_id: int
    state: Presence
    call_id: str | None
    reason: str


@dataclass(frozen=True)
class QueueChanged:
    """The queue's order or states changed (browsers get a new snapshot)."""


@dataclass(frozen=True)
class PositionChanged:
    """A queued caller's position (or the number of ready operators) changed: tell its worker."""

    call_id: str
    worker: str
    position: int
    operators_ready: int


@dataclass(frozen=True)
class CallConnected:
    call_id: str
    user_id: int
    offer_id: str


Effect = OfferMade | OfferRevoked | BridgeRequested | PresenceChanged | QueueChanged | PositionChanged | CallConnected


class Router:
    def __init__(self, clock: Callable[[], float], offer_timeout_s: float = 15.0, bridge_timeout_s: float = 30.0,
                 new_id: Callable[[], str] = lambda: uuid.uuid4().hex):
        self.clock = clock
        self.offer_timeout_s = offer_timeout_s
        self.bridge_timeout_s = bridge_timeout_s
        self.new_id = new_id
        self.queue: dict[str, QueuedCall] = {}  # insertion order is irrelevant: sorted by ``order``
        self.operators: dict[int, Operator] = {}
        self._order = 0
        self._announced: dict[str, tuple[int, int]] = {}  # call_id -> (position, operators_ready) last sent

    # ------------------------------------------------------------------ reading
    def waiting(self) -> list[QueuedCall]:
        """Queued calls in queue order: by when the caller joined (the worker's clock), then by arrival here; the
        reports of several workers reach the hub through several hubs, not always in the order callers joined.
        Waiting, offered and bridging calls keep their places."""
        return sorted(self.queue.values(), key=lambda q: (q.joined_at, q.order))

    def positions(self) -> dict[str, int]:
        return {q.call_id: i for i, q in enumerate(self.waiting())}

    def operators_ready(self) -> int:
        return sum(1 for o in self.operators.values() if self._free(o))

    def offer(self, offer_id: str) -> Offer | None:
        for q in self.queue.values():
            if q.offer is not None and q.offer.offer_id == offer_id:
                return q.offer
        return None

    def operator(self, user_id: int) -> Operator:
        if user_id not in self.operators:
            self.operators[user_id] = Operator(user_id=user_id, since=self.clock())
        return self.operators[user_id]

    # ------------------------------------------------------------------ operators
    def upsert_operator(self, user_id: int, *, name: str = "", sip_uri: str | None = None,
                        skills: frozenset[str] | set[str] | list[str] | None = None) -> Operator:
        op = self.operator(user_id)
        op.name, op.sip_uri, op.skills = name, sip_uri, frozenset(skills or ())
        return op

    def set_connected(self, user_id: int, connected: bool) -> list[Effect]:
        op = self.operator(user_id)
        if op.connected == connected:
            return []
        op.connected = connected
        return self._settle([])

    def set_presence(self, user_id: int, state: str) -> list[Effect]:
        if state not in PRESENCES:
            raise RoutingError("未知的状态")
        op = self.operator(user_id)
        effects: list[Effect] = []
        if op.call_id is not None:
            if op.state == "wrap_up" and state == "ready":
                return self.wrap_up_done(user_id)
            if state != op.state:
                raise RoutingError("通话或话后处理中不能切换状态")
            return []
        if op.offer is not None and state != "ready":
            effects += self._revoke(op.offer, "presence", next_state=None)
        if state != op.state:
            self._set(op, state, None, "manual", effects)  # type: ignore[arg-type]
        return self._settle(effects)

    def wrap_up_done(self, user_id: int) -> list[Effect]:
        op = self.operator(user_id)
        if op.state != "wrap_up":
            raise RoutingError("当前不在话后处理状态")
        effects: list[Effect] = []
        self._set(op, "ready", None, "wrap_up_done", effects)
        return self._settle(effects)

    def restore(self, user_id: int, state: str, call_id: str | None = None) -> list[Effect]:
        """Put an operator back in the state another hub last had them in (a new deciding hub, issue 17): ``ready``
        and ``away`` as they were, ``wrap_up`` on its call; nothing when they are on a call or under an offer here
        already (the rebuilt calls know better)."""
        op = self.operator(user_id)
        if op.call_id is not None or op.offer is not None or state not in PRESENCES:
            return []
        effects: list[Effect] = []
        if state in ("ready", "away"):
            self._set(op, state, None, "restored", effects)  # type: ignore[arg-type]
        elif state == "wrap_up" and call_id:
            self._set(op, "wrap_up", call_id, "restored", effects)
        return self._settle(effects)

    def reset(self) -> None:
        """Forget every call and operator (this hub no longer decides; the one that does rebuilt them)."""
        self.queue.clear()
        self.operators.clear()
        self._announced.clear()

    # ------------------------------------------------------------------ calls
    def enqueue(self, call_id: str, worker: str, category: str | None, reason: str = "",
                joined_at: float | None = None) -> list[Effect]:
        if call_id in self.queue or any(o.call_id == call_id for o in self.operators.values()):
            return []
        self._order += 1
        self.queue[call_id] = QueuedCall(call_id, worker, category, reason,
                                         self.clock() if joined_at is None else joined_at, self._order)
        return self._settle([QueueChanged()])

    def leave(self, call_id: str, reason: str = "caller_left") -> list[Effect]:
        """The caller left the queue (hung up, chose a callback, waited too long)."""
        q = self.queue.pop(call_id, None)
        self._announced.pop(call_id, None)
        effects: list[Effect] = []
        if q is None:
            return effects
        if q.offer is not None:
            effects += self._revoke(q.offer, reason, next_state="ready", requeue=False)
        effects.append(QueueChanged())
        return self._settle(effects)

    def call_ended(self, call_id: str) -> list[Effect]:
        effects = self.leave(call_id, "caller_left") if call_id in self.queue else []
        for op in self.operators.values():
            if op.call_id == call_id and op.state == "busy":
                self._set(op, "wrap_up", call_id, "call_ended", effects)
        return self._settle(effects)

    def assign(self, user_id: int, call_id: str) -> list[Effect]:
        """The operator is talking on ``call_id`` already (known from before a hub restart)."""
        effects: list[Effect] = []
        op = self.operator(user_id)
        if op.offer is not None:
            effects += self._revoke(op.offer, "presence", next_state=None)
        self._set(op, "busy", call_id, "connected", effects)
        return self._settle(effects)

    def accept(self, user_id: int, offer_id: str) -> list[Effect]:
        op = self.operator(user_id)
        offer = op.offer
        if offer is None or offer.offer_id != offer_id:
            raise RoutingError("该来电已不再分配给您")
        q = self.queue.get(offer.call_id)
        if q is None or q.offer is not offer:
            op.offer = None
            raise RoutingError("来电人已离开队列")
        if not op.sip_uri:
            raise RoutingError("您的账号未配置SIP话机地址，无法接听，请联系管理员")
        now = self.clock()
        offer.accepted_at, offer.bridge_deadline = now, now + self.bridge_timeout_s
        offer.idle_since = op.since
        op.offer = None
        effects: list[Effect] = []
        self._set(op, "busy", q.call_id, "accepted", effects)
        effects += [BridgeRequested(q.call_id, q.worker, offer.offer_id, op.sip_uri, user_id), QueueChanged()]
        return self._settle(effects)

    def decline(self, user_id: int, offer_id: str) -> list[Effect]:
        op = self.operator(user_id)
        if op.offer is None or op.offer.offer_id != offer_id:
            raise RoutingError("该来电已不再分配给您")
        q = self.queue.get(op.offer.call_id)
        if q is not None:
            q.declined.add(user_id)
        return self._settle(self._revoke(op.offer, "declined", next_state=None))

    def bridge_update(self, call_id: str, offer_id: str, state: str, reason: str = "") -> list[Effect]:
        effects: list[Effect] = []
        q = self.queue.get(call_id)
        if state == "connected":
            if q is not None and q.offer is not None and q.offer.offer_id == offer_id:
                user_id = q.offer.user_id
                del self.queue[call_id]
                self._announced.pop(call_id, None)
                op = self.operator(user_id)
                self._set(op, "busy", call_id, "connected", effects)
                effects += [CallConnected(call_id, user_id, offer_id), QueueChanged()]
        elif state == "failed":
            if q is not None and q.offer is not None and q.offer.offer_id == offer_id:
                if phone_failed(reason):
                    effects += self._revoke(q.offer, "bridge_failed", next_state="away")
                else:
                    effects += self._revoke(q.offer, "bridge_unavailable", next_state="ready")
        elif state == "ended":
            for op in self.operators.values():
                if op.call_id == call_id and op.state == "busy" and call_id not in self.queue:
                    self._set(op, "wrap_up", call_id, "bridge_ended", effects)
        return self._settle(effects)

    def tick(self) -> list[Effect]:
        """Expire unanswered offers and bridges the worker never reported on."""
        now = self.clock()
        effects: list[Effect] = []
        for q in self.waiting():
            o = q.offer
            if o is None:
                continue
            if o.accepted_at is None and now >= o.expires_at:
                effects += self._revoke(o, "timeout", next_state="away")
            elif o.bridge_deadline is not None and now >= o.bridge_deadline:  # the worker never said: not the
                effects += self._revoke(o, "bridge_unavailable", next_state="ready")  # operator's doing
        return self._settle(effects)

    def next_deadline(self) -> float | None:
        times = [t for q in self.queue.values() if q.offer is not None
                 for t in ((q.offer.expires_at if q.offer.accepted_at is None else q.offer.bridge_deadline),)
                 if t is not None]
        return min(times) if times else None

    # ------------------------------------------------------------------ internals
    def _free(self, op: Operator) -> bool:
        return op.state == "ready" and op.connected and op.offer is None and op.call_id is None

    def _set(self, op: Operator, state: Presence, call_id: str | None, reason: str, effects: list[Effect]) -> None:
        changed = (op.state, op.call_id) != (state, call_id)
        if op.state != state:
            op.since = self.clock()
        op.state, op.call_id, op.reason = state, call_id, reason
        if changed:
            effects.append(PresenceChanged(op.user_id, state, call_id, reason))

    def _revoke(self, offer: Offer, reason: str, *, next_state: Presence | None,
                requeue: bool = True) -> list[Effect]:
        """End ``offer``; the call waits again at its place (``requeue``); the operator goes ``next_state``."""
        effects: list[Effect] = [OfferRevoked(offer, reason)]
        q = self.queue.get(offer.call_id)
        if requeue and q is not None and q.offer is offer:
            q.offer = None
            effects.append(QueueChanged())
        op = self.operator(offer.user_id)
        if op.offer is offer:
            op.offer = None
        if op.call_id == offer.call_id:  # accepted, bridge not connected
            op.call_id = None
            if next_state is None:
                next_state = "ready"
        if next_state is not None:
            was_busy = op.state == "busy"
            self._set(op, next_state, None, {"timeout": "missed_offer"}.get(reason, reason), effects)
            if next_state == "ready" and was_busy and offer.idle_since is not None:
                op.since = offer.idle_since  # a bridge that failed through no fault of theirs costs no place
        return effects

    def _dispatch(self, effects: list[Effect]) -> None:
        now = self.clock()
        for q in self.waiting():
            if q.offer is not None:
                continue
            free = [o for o in self.operators.values()
                    if self._free(o) and o.takes(q.category) and o.user_id not in q.declined]
            if not free:
                continue
            op = min(free, key=lambda o: (o.since, o.user_id))
            offer = Offer(self.new_id(), q.call_id, op.user_id, now, now + self.offer_timeout_s)
            q.offer = op.offer = offer
            effects += [OfferMade(offer, q), QueueChanged()]

    def _settle(self, effects: list[Effect]) -> list[Effect]:
        """Offer what can be offered, then report changed positions; merges repeated QueueChanged."""
        self._dispatch(effects)
        ready = self.operators_ready()
        for call_id, pos in self.positions().items():
            q = self.queue[call_id]
            if self._announced.get(call_id) != (pos, ready):
                self._announced[call_id] = (pos, ready)
                effects.append(PositionChanged(call_id, q.worker, pos, ready))
        out: list[Effect] = []
        seen_queue = False
        for e in effects:
            if isinstance(e, QueueChanged):
                if seen_queue:
                    continue
                seen_queue = True
            out.append(e)
        return out
