"""Several hubs, one live state (issue 17): one hub decides, the others forward to it through Redis.

The live calls, the operator queue, presence and offers are decided by one hub at a time: the one holding the
lease ``{prefix}ops:leader`` (``SET NX PX``, renewed every second; it lapses ``lease_s`` after its holder stops).
Every hub, the deciding one too, puts what changes that state on one Redis stream, ``{prefix}ops:in``, in the
order it happened here: worker events as they were stored, browsers coming and going and their commands, worker
sockets opening and closing. The deciding hub folds the stream into its :class:`OpsHub`, so a caller queued by a
worker whose events reach hub 1 is offered to an operator on hub 2, and only one hub ever makes an offer (never
two operators offered one caller). What its state sends back goes through each hub's own stream
``{prefix}ops:to:<hub>``: control messages for a browser, commands for a worker whose socket is on that hub,
replies to a command or a snapshot request. Browser events go through the shared event log (``shared_log``).

Why one deciding hub rather than every hub folding the same stream: the state machine reads the clock, makes
ids and asks the database (work orders, agent assist), so copies would drift; one writer with a lease is what
Redis-based queues usually do, and a hub that dies costs only the lease time.

A hub that begins to decide rebuilds the live calls and the queue from the database, as a restarted hub does,
without sending it to browsers again (they saw it); events still on the stream are left out of the rebuild and
applied from the stream: those after the mark ``{prefix}ops:done``, set in the same Redis script as the browser
events of the input it marks, and only while the lease is still its own (``RedisEventLog.together``: none
applied twice). Every hub then announces its browsers and workers again; operators get back their presence
(kept in ``{prefix}ops:presence``). Offers open on the old hub are gone (the call is offered again). A hub whose
heartbeat key lapsed is gone: its browsers are detached and its workers count as away from then.

While Redis does not answer, what a hub must forward waits in order and goes out when Redis is back; commands and
snapshots fail with a message (the browser retries). IVR calls go on: workers only need the hub for the queue.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import redis
from pydantic import TypeAdapter

from agent_console.models import User
from agent_console.ops import routing as r
from agent_console.ops.hub import OpsHub
from agent_console.ops.protocol import ClientMessage, Snapshot, Suggestion
from agent_console.ops.redis_sender import OrderedSender
from agent_console.ops.shared_log import RedisEventLog
from agent_console.ops.workers import ClusterWorkers, WorkerConn
from ivr.contract import CallEvent

log = logging.getLogger(__name__)
_events: TypeAdapter[list[Any]] = TypeAdapter(list[CallEvent])
BUSY = "系统繁忙，请稍后重试"
RETRY_S = 1.0
STREAM_MAXLEN = 10_000
INBOX_TTL_S = 3600  # a hub's own stream outlives it this long
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""


def _to_stream(client: redis.Redis, key: str, fields: dict[str, str]) -> None:
    """Add to a hub's own stream, which outlives that hub by INBOX_TTL_S."""
    with client.pipeline(transaction=False) as pipe:
        pipe.xadd(key, fields, maxlen=STREAM_MAXLEN, approximate=True)
        pipe.expire(key, INBOX_TTL_S)
        pipe.execute()


@dataclass(frozen=True)
class RemoteLine:
    """A browser's control line as the deciding hub's outbox holds it; delivered by the hub the browser is on."""

    hub: str
    conn: str
    deliver: Callable[[str, str, dict[str, Any]], None] = field(compare=False, hash=False, repr=False)

    def __call__(self, msg: dict[str, Any]) -> None:
        self.deliver(self.hub, self.conn, msg)


class ClusteredOps:
    """``app.state.ops`` of a hub that shares the live state with other hubs: :class:`OpsHub`'s methods, with the
    state on the deciding hub. ``hub`` is this hub's own OpsHub (empty unless this hub decides); its ``workers``
    must be a :class:`ClusterWorkers`. ``load_user`` reads an operator (id -> User, None when gone)."""

    def __init__(self, hub: OpsHub, client: redis.Redis, *, load_user: Callable[[int], User | None],
                 prefix: str = "hotline:", lease_s: float = 5.0, rpc_timeout_s: float = 5.0,
                 hub_id: str | None = None):
        assert isinstance(hub.workers, ClusterWorkers) and isinstance(hub.log, RedisEventLog)
        self.hub = hub
        self.redis = client
        self.id = hub_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.workers: ClusterWorkers = hub.workers
        self.workers.hub_id, self.workers.forward = self.id, self._forward_command
        self.log, self.persist = hub.log, hub.persist
        self.load_user = load_user
        self.lease_ms = int(lease_s * 1000)
        self.renew_s = min(1.0, lease_s / 4)
        self.rpc_timeout_s = rpc_timeout_s
        p = prefix
        self.k_lease, self.k_in, self.k_done, self.k_presence = (f"{p}ops:leader", f"{p}ops:in", f"{p}ops:done",
                                                                 f"{p}ops:presence")
        self.k_alive = f"{p}ops:hub:"
        self.k_to = f"{p}ops:to:"  # + hub id: each hub's own stream
        self.k_me = self.k_to + self.id
        self.leading = False
        self.leader: str | None = None
        self._lock = threading.Lock()
        self._lines: dict[str, tuple[int, Callable[[dict[str, Any]], None]]] = {}  # conn -> (user, say), here
        self._waiting: dict[str, Future[dict[str, Any]]] = {}
        self._out = OrderedSender(client)
        self._in_id = "0-0"
        self._me_id = "0-0"
        self._skip: set[str] = set()
        self._restored: set[int] = set()
        self._remote_lines: dict[str, set[tuple[int, str]]] = {}  # hub -> its browsers (user, conn), when deciding
        self._absent_once = False
        self._reachable_since: float | None = time.monotonic()
        hub.out.on_presence = self._presence_changed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ops-cluster", daemon=True)
        self._thread.start()

    # ================================================================== OpsHub's interface
    @property
    def epoch(self) -> str:
        return self.log.epoch

    def clock(self) -> float:
        return self.hub.clock()

    def attach(self, user: User, say: Callable[[dict[str, Any]], None]) -> None:
        conn = uuid.uuid4().hex[:12]
        with self._lock:
            self._lines[conn] = (user.id, say)
        self._post("attach", user=user.id, conn=conn)

    def detach(self, user_id: int, say: Callable[[dict[str, Any]], None]) -> None:
        with self._lock:
            conns = [c for c, (u, s) in self._lines.items() if u == user_id and s == say]
            for c in conns:
                del self._lines[c]
        for c in conns:
            self._post("detach", user=user_id, conn=c)

    def command(self, user: User, cmd: Any) -> str | None:
        try:
            return self._ask("command", user=user.id, cmd=cmd.model_dump(mode="json"))["error"]
        except FutureTimeout:
            return BUSY

    def snapshot(self, user: User) -> Snapshot:
        try:
            return Snapshot.model_validate(self._ask("snapshot", user=user.id)["snapshot"])
        except FutureTimeout:
            raise RuntimeError("the deciding hub did not answer a snapshot request") from None

    def wallboard(self) -> dict[str, Any]:
        return self._ask("wallboard")["wallboard"]

    def call_hints(self, call_id: str) -> dict[str, str | None] | None:
        try:
            return self._ask("hints", call_id=call_id)["hints"]
        except FutureTimeout:
            return None  # a draft without the live view's hints

    def on_events_stored(self, events: Sequence[Any]) -> None:
        # agent assist (the knowledge base's matcher, the costly part) runs here, on the hub that received the
        # events: the deciding hub only folds them into the state
        notes: dict[str, Any] = {}
        self.hub.assist.on_stored(events, notes)
        self._post("events", events=[e.model_dump(mode="json") for e in events],
                   notes={k: [x.model_dump(mode="json") for x in v] if isinstance(v, list) else v
                          for k, v in notes.items()})

    def on_worker_hello(self, worker: str, calls: list[str], opened_at: float | None = None) -> None:
        self._post("hello", worker=worker, calls=calls, opened_at=opened_at, judge=True)

    def worker_closed(self, conn: WorkerConn, at: float) -> None:
        self.workers.unregister(conn, at)
        if not self.workers.is_local(conn.worker):
            self._post("gone", worker=conn.worker, at=at)

    def tick(self) -> None:
        if self.leading:
            self.hub.tick()

    def rebuild(self) -> set[str]:
        """Nothing at start-up: the hub that takes the lease rebuilds."""
        return set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self.leading:
            with contextlib.suppress(redis.RedisError):  # hand over at once rather than after the lease lapses
                self.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
                                "return 0", 1, self.k_lease, self.id)
        self.hub.close()

    # ================================================================== to Redis
    def _post(self, kind: str, **data: Any) -> None:
        fields = {"k": kind, "h": self.id, "t": repr(time.time()),
                  "d": json.dumps(data, ensure_ascii=False, separators=(",", ":"))}
        self._out.send(lambda r: r.xadd(self.k_in, fields, maxlen=STREAM_MAXLEN, approximate=True))

    def _ask(self, kind: str, **data: Any) -> dict[str, Any]:
        """A request to the deciding hub and its answer; FutureTimeout when none comes in time."""
        req = uuid.uuid4().hex
        fut: Future[dict[str, Any]] = Future()
        with self._lock:
            self._waiting[req] = fut
        try:
            if self._out.down:
                raise FutureTimeout
            self._post(kind, req=req, **data)
            return fut.result(self.rpc_timeout_s)
        finally:
            with self._lock:
                self._waiting.pop(req, None)

    def _to_hub(self, hub: str, kind: str, **data: Any) -> None:
        if hub == self.id:
            self._mine(kind, data)
        else:
            key, fields = self.k_to + hub, {"k": kind, "d": json.dumps(data, ensure_ascii=False)}
            self._out.send(lambda r: _to_stream(r, key, fields))

    def _forward_command(self, hub: str, worker: str, text: str) -> None:
        self._to_hub(hub, "cmd", worker=worker, text=text)

    def _deliver(self, hub: str, conn: str, msg: dict[str, Any]) -> None:
        self._to_hub(hub, "say", conn=conn, msg=msg)

    def _presence_changed(self, op: r.Operator) -> None:
        user, state = str(op.user_id), json.dumps({"state": op.state, "call_id": op.call_id})
        self._out.send(lambda r: r.hset(self.k_presence, user, state))

    # ================================================================== the loop
    def _run(self) -> None:
        next_lease = 0.0
        away = False
        while not self._stop.is_set():
            try:
                if self._out.pending and not self._out.flush():
                    self._stop.wait(RETRY_S)
                    continue
                if time.monotonic() >= next_lease:
                    next_lease = time.monotonic() + self.renew_s
                    self._keep_lease()
                streams = {self.k_me: self._me_id}
                if self.leading:
                    streams[self.k_in] = self._in_id
                got = self.redis.xread(streams, count=200, block=int(self.renew_s * 500))
                if away:
                    log.info("ops: Redis answers again")
                away = False
                for key, items in got or []:
                    mine = (key.decode() if isinstance(key, bytes) else key) == self.k_me
                    for item_id, fields in items:
                        item_id = item_id.decode() if isinstance(item_id, bytes) else item_id
                        f = {k.decode(): v.decode() for k, v in fields.items()}
                        # what browsers see of an input and the mark that it was applied: both or neither
                        with contextlib.nullcontext() if mine or not self.leading else self.log.together(
                                self.k_done, item_id, fence=(self.k_lease, self.id)):
                            self._handle(mine, item_id, f)
            except redis.RedisError as e:
                if not away:
                    log.warning("ops: Redis unreachable (%s); this hub %s", e,
                                "goes on deciding with what reaches it" if self.leading else "waits")
                away = True
                self._reachable_since = None
                self._stop.wait(RETRY_S)

    def _handle(self, mine: bool, item_id: str, f: dict[str, str]) -> None:
        if mine:
            self._me_id = item_id
        else:
            self._in_id = item_id
        try:
            data = json.loads(f["d"])
            if mine:
                self._mine(f["k"], data)
            else:
                self._decide(f["k"], f["h"], float(f["t"]), data)
        except redis.RedisError:
            raise
        except Exception:  # noqa: BLE001 - one bad message must not stop the hub
            log.exception("ops: could not handle a %s message", f.get("k"))

    # ------------------------------------------------------------------ every hub: messages for this hub
    def _mine(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "say":
            with self._lock:
                line = self._lines.get(data["conn"])
            if line is not None:
                line[1](data["msg"])
        elif kind == "cmd":
            self.workers.send_local(data["worker"], data["text"])
        elif kind == "reply":
            with self._lock:
                fut = self._waiting.get(data["req"])
            if fut is not None and not fut.done():
                fut.set_result(data)

    # ------------------------------------------------------------------ the deciding hub: the shared stream
    def _decide(self, kind: str, hub: str, at: float, data: dict[str, Any]) -> None:
        h = self.hub
        if kind == "events":
            events = [e for e in _events.validate_python(data["events"]) if e.event_id not in self._skip]
            notes = {k: [Suggestion.model_validate(x) for x in v] if isinstance(v, list) else v
                     for k, v in data.get("notes", {}).items()}
            if events:
                h.on_events_stored(events, notes)
        elif kind == "hello":
            self.workers.remote_hello(data["worker"], hub)
            if data.get("judge"):
                h.on_worker_hello(data["worker"], data["calls"], data.get("opened_at"))
        elif kind == "gone":
            self.workers.remote_gone(data["worker"], hub, data["at"])
        elif kind == "attach":
            user = self.load_user(data["user"])
            if user is None or (user.id, data["conn"]) in self._remote_lines.get(hub, set()):
                return  # gone, or announced again by a hub whose heartbeat had lapsed
            self._remote_lines.setdefault(hub, set()).add((user.id, data["conn"]))
            h.attach(user, RemoteLine(hub, data["conn"], self._deliver))
            if user.id not in self._restored:
                self._restored.add(user.id)
                self._restore_presence(user.id)
        elif kind == "detach":
            self._remote_lines.get(hub, set()).discard((data["user"], data["conn"]))
            h.detach(data["user"], RemoteLine(hub, data["conn"], self._deliver))
        elif "req" in data:
            if time.time() - at > self.rpc_timeout_s:
                return  # its hub gave up waiting (this hub has just begun to decide)
            self._to_hub(hub, "reply", req=data["req"], **self._answer(kind, data))

    def _answer(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        h = self.hub
        if kind == "wallboard":
            return {"wallboard": h.wallboard()}
        if kind == "hints":
            return {"hints": h.call_hints(data["call_id"])}
        user = self.load_user(data["user"])
        if user is None:
            return {"error": "账号不存在", "snapshot": None}
        if kind == "snapshot":
            with h.lock:
                h.router.operator(user.id)  # an operator whose attach is still on its way
            return {"snapshot": h.snapshot(user).model_dump(mode="json")}
        cmd = ClientMessage.model_validate({"message": data["cmd"]}).message
        return {"error": h.command(user, cmd)}

    def _restore_presence(self, user_id: int) -> None:
        try:
            raw = self.redis.hget(self.k_presence, str(user_id))
        except redis.RedisError:
            return
        if raw:
            kept = json.loads(raw)
            with self.hub.lock:
                self.hub.out.effects(self.hub.router.restore(user_id, kept.get("state", ""), kept.get("call_id")))

    # ------------------------------------------------------------------ the lease
    def _keep_lease(self) -> None:
        lapsed = self.redis.set(self.k_alive + self.id, "1", px=self.lease_ms, get=True) is None
        if self._reachable_since is None:
            self._reachable_since = time.monotonic()
        if lapsed and self.leader is not None and not self.leading:
            self._announce()  # the deciding hub may have counted this hub gone (a stall, Redis out of reach longer)
        if self.leading:
            if not self.redis.eval(_RENEW, 1, self.k_lease, self.id, self.lease_ms):
                log.error("ops: hub %s lost the lease; another hub decides now", self.id)
                self._step_down()
        else:
            holder = self.redis.get(self.k_lease)
            # a lease that went missing is taken on the second look: a hub that decided before Redis went away
            # renews it first
            if holder is None and (self._absent_once or self.leader is None):
                done = self.redis.get(self.k_done)  # after what the previous deciding hub applied, else all
                start = done.decode() if done else "0-0"
                if self.redis.set(self.k_lease, self.id, nx=True, px=self.lease_ms):
                    self._take_over(start)
            self._absent_once = holder is None
        holder = self.redis.get(self.k_lease)
        holder = holder.decode() if holder else None
        if holder != self.leader:
            self.leader = holder
            if holder is not None:
                self._announce()
        if self.leading:
            self._drop_lost_hubs()

    def _take_over(self, start: str) -> None:
        """This hub decides from now: rebuild from the database what the stream does not bring."""
        pending: set[str] = set()
        for _, f in self.redis.xrange(self.k_in, min="-" if start == "0-0" else f"({start}", max="+"):
            if f.get(b"k") == b"events":
                pending |= {e.get("event_id") for e in json.loads(f[b"d"]).get("events", [])}
        self.hub.reset()
        self.workers.forget_remote()
        self._skip = self.hub.rebuild(pending, quiet=True)
        self.workers.expect({c.worker for c in self.hub.calls.values() if c.state != "ended"}, self.hub.clock())
        self._restored.clear()
        self._remote_lines.clear()
        self._in_id = start
        self.leading = True
        log.warning("ops: hub %s decides now: %d live call(s) rebuilt, %d queued", self.id,
                    len(self.hub.calls), len(self.hub.router.queue))

    def _step_down(self) -> None:
        self.leading = False
        self.hub.reset()
        self.workers.forget_remote()

    def _announce(self) -> None:
        """Tell the (new) deciding hub of this hub's browsers and workers."""
        with self._lock:
            lines = [(conn, user) for conn, (user, _) in self._lines.items()]
        for conn, user in lines:
            self._post("attach", user=user, conn=conn)
        for worker, calls in self.workers.local():
            self._post("hello", worker=worker, calls=calls, judge=False)

    def _drop_lost_hubs(self) -> None:
        """Browsers and workers of a hub whose heartbeat lapsed (it died): detached, away from now. Not in the first
        lease after Redis came back (every heartbeat lapsed meanwhile); a hub that lives announces them again."""
        if self._reachable_since is None or time.monotonic() - self._reachable_since < self.lease_ms / 1000:
            return
        hubs = {h for h in self._remote_lines if h != self.id} | self.workers.remote_hubs()
        for hub in hubs:
            if self.redis.exists(self.k_alive + hub):
                continue
            log.warning("ops: hub %s is gone: its browsers are detached, its workers away", hub)
            for user, conn in self._remote_lines.pop(hub, set()):
                self.hub.detach(user, RemoteLine(hub, conn, self._deliver))
            now = self.hub.clock()
            for worker in self.workers.workers_on(hub):
                self.workers.remote_gone(worker, hub, now)
