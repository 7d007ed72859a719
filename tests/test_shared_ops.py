"""Issue 17: two hub processes, one real Redis, one live state. A caller queued through hub 1 (its worker's socket
is there) is offered to and taken by an operator on hub 2; one caller is never offered to two operators; when
the deciding hub dies the other rebuilds the queue, keeps the operators' presence and goes on offering."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator

import pytest

from ivr.contract import BridgeUpdate, QueueLeft
from tests.browser import Hub
from tests.ops_support import TOKEN, FakeWorker, Operator, add_users, login_cookie, post_events, queued_call
from tests.redis_support import redis

pytestmark = pytest.mark.timeout(240)
LEASE_S = 2.0


def shared_hub(home, redis_url: str) -> Hub:
    h = Hub(home)  # one home: one SQLite file for both, as one database server would be
    h.env.update({"HOTLINE_HUB__WORKER_TOKEN": TOKEN, "HOTLINE_REDIS__URL": redis_url,
                  "HOTLINE_REDIS__LEASE_S": str(LEASE_S), "HOTLINE_HUB__OFFER_TIMEOUT_S": "30"})
    return h


def deciding_hub(client, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while (holder := client.get("hotline:ops:leader")) is None:
        assert time.monotonic() < deadline, "no hub took the lease"
        time.sleep(0.1)
    return holder.decode()


@contextlib.contextmanager
def two_hubs(home, fresh_redis) -> Iterator[tuple[Hub, Hub]]:
    """Hub 1 (the deciding hub, started first) and hub 2 on one home and one Redis; both stopped at the end."""
    h1 = shared_hub(home, fresh_redis.url).start()
    deciding_hub(redis.Redis.from_url(fresh_redis.url))
    h2 = shared_hub(home, fresh_redis.url).start()
    try:
        yield h1, h2
    finally:
        for h in (h1, h2):
            h.stop()


def ready(hub: Hub, name: str) -> Operator:
    op = Operator(hub, login_cookie(hub, name))
    op.until("snapshot")
    op.send({"type": "presence", "state": "ready"})
    op.until("presence", operator__state="ready", timeout=10)
    return op


def offers(op: Operator, call_id: str) -> list[dict]:
    return [e for e in op.events if e["type"] == "offer" and e["call_id"] == call_id]


def test_one_live_state_across_two_hubs_and_the_other_hub_takes_over(tmp_path, fresh_redis):
    client = redis.Redis.from_url(fresh_redis.url)
    home = tmp_path / "home"
    h1 = shared_hub(home, fresh_redis.url).start()
    first = deciding_hub(client)
    h2 = shared_hub(home, fresh_redis.url).start()
    try:
        assert deciding_hub(client) == first  # the second hub does not take the lease from the first
        add_users(h1, ("op1", "operator", "sip:op1@127.0.0.1:5099"), ("op2", "operator", "sip:op2@127.0.0.1:5099"),
                  ("sup1", "supervisor", None))
        worker = FakeWorker(h1, "b-w0")  # the worker's command socket is on hub 1
        op1 = ready(h2, "op1")  # the operator's browser is on hub 2
        sup = Operator(h1, login_cookie(h1, "sup1"))
        sup.until("snapshot")

        post_events(h1, queued_call("x1", worker="b-w0"))  # the worker reports to hub 1
        assert worker.next("queue_status", call_id="x1", timeout=10).position == 0
        offer = op1.until("offer", call_id="x1", timeout=10)
        op1.send({"type": "accept", "offer_id": offer["offer_id"]})
        bridge = worker.next("bridge", call_id="x1", timeout=10)  # hub 2's accept reaches the worker on hub 1
        assert (bridge.offer_id, bridge.target) == (offer["offer_id"], "sip:op1@127.0.0.1:5099")
        k = {"call_id": "x1", "worker": "b-w0"}
        post_events(h2, [BridgeUpdate(**k, offer_id=offer["offer_id"], target=bridge.target, state="connected"),
                         QueueLeft(**k, node="consult_staff", outcome="bridged")])  # now through hub 2
        op1.until("call_view", call_id="x1", state="talking", timeout=10)
        sup.until("call_view", call_id="x1", state="talking", timeout=10)  # the supervisor on hub 1 sees it

        # two ready operators on two hubs, three callers: each caller offered to one operator at a time
        op2 = ready(h1, "op2")
        for i in range(2, 5):
            post_events(h1 if i % 2 else h2, queued_call(f"x{i}", worker="b-w0"))
        got = op2.until("offer", call_id="x2", timeout=10)
        op2.drain(1.0)
        op1.drain(0.1)
        for i in range(2, 5):
            assert len(offers(op1, f"x{i}")) + len(offers(op2, f"x{i}")) <= 1, f"x{i} offered twice"
        assert not offers(op1, "x2")  # op1 is busy on x1

        # the deciding hub (hub 1) dies: hub 2 takes the lease, rebuilds the queue and offers again
        assert f"-{h1.proc.popen.pid}-" in first
        os.killpg(h1.proc.popen.pid, signal.SIGKILL)
        t0 = time.monotonic()
        while deciding_hub(client) == first:
            assert time.monotonic() - t0 < LEASE_S + 10, "nobody took over"
            time.sleep(0.05)
        print(f"hub 2 decides {time.monotonic() - t0:.1f} s after hub 1 was killed")
        worker.close()  # the worker reconnects (through the balancer, in production) and names its calls
        worker = FakeWorker(h2, "b-w0", calls=[f"x{i}" for i in range(1, 5)])
        op2 = Operator(h2, login_cookie(h2, "op2"))  # op2's browser comes back through hub 2
        snap = op2.until("snapshot", timeout=10)
        assert snap["me"]["state"] == "ready"  # the presence op2 had, kept in Redis
        assert [e["call_id"] for e in snap["queue"]["entries"]] == ["x2", "x3", "x4"]  # rebuilt, in order
        offer = snap["offer"] or op2.until("offer", timeout=10)
        assert offer["call_id"] == "x2"
        op2.send({"type": "accept", "offer_id": offer["offer_id"]})
        assert worker.next("bridge", call_id="x2", timeout=10).target == "sip:op2@127.0.0.1:5099"
        op1.drain(0.5)
        assert not offers(op1, "x2") and not offers(op1, "x3")  # op1, still on hub 2, is still on x1
        assert got["call_id"] == "x2"
        worker.close()
    finally:
        for h in (h1, h2):
            h.stop()



def test_redis_away_for_10_s_the_queue_resumes_and_nothing_is_lost(tmp_path, fresh_redis):
    """Redis stopped (with its append-only file) and started again: calls reported meanwhile are stored at once,
    reach the queue when Redis is back, and are offered; a command meanwhile gets a clear refusal."""
    from sqlalchemy import select

    from agent_console.models import Call
    from hotline.db import make_engine, session_factory

    home = tmp_path / "home"
    with two_hubs(home, fresh_redis) as (h1, h2):
        add_users(h1, ("op1", "operator", "sip:op1@127.0.0.1:5099"))
        worker = FakeWorker(h1, "c-w0")
        op1 = ready(h2, "op1")
        fresh_redis.stop()
        t0 = time.monotonic()
        post_events(h1, queued_call("r1", worker="c-w0"))  # the worker's report is taken while Redis is away
        post_events(h2, queued_call("r2", worker="c-w0"))
        assert time.monotonic() - t0 < 3.0
        op1.send({"type": "presence", "state": "away", "ref": "p1"})
        refused = op1.until("error", timeout=10)
        assert refused["message"] == "系统繁忙，请稍后重试" and refused["ref"] == "p1"
        engine = make_engine(f"sqlite:///{home / 'hotline.db'}")
        with session_factory(engine)() as db:  # the call records are there already
            assert set(db.scalars(select(Call.call_id).where(Call.call_id.in_(["r1", "r2"])))) == {"r1", "r2"}
        engine.dispose()
        time.sleep(max(0.0, 10.0 - (time.monotonic() - t0)))
        fresh_redis.start()
        back = time.monotonic()
        offer = op1.until("offer", timeout=20)
        print(f"offer {time.monotonic() - back:.1f} s after Redis came back")
        # whichever report reached the deciding hub first is offered first; the queue shows the callers in the
        # order they joined
        assert offer["call_id"] in {"r1", "r2"}
        deadline = time.monotonic() + 10
        while [e["call_id"] for e in op1.has_or_until("queue", timeout=10)["entries"]] != ["r1", "r2"]:
            assert time.monotonic() < deadline, op1.events[-3:]
            op1.until("queue", timeout=10)
        op1.send({"type": "accept", "offer_id": offer["offer_id"]})
        assert worker.next("bridge", call_id=offer["call_id"], timeout=10).target == "sip:op1@127.0.0.1:5099"
        worker.close()


def op1_connected(hub: Hub, until: bool = False, timeout: float = LEASE_S + 5) -> bool:
    """Whether a supervisor's console opened on ``hub`` shows op1 connected (looked at until it is ``until``)."""
    deadline = time.monotonic() + timeout
    while True:
        sup = Operator(hub, login_cookie(hub, "sup1"))
        ops = {o["name"]: o for o in sup.until("snapshot", timeout=10)["operators"]}
        sup.close()
        if ops["op1"]["connected"] is until or time.monotonic() > deadline:
            return ops["op1"]["connected"]
        time.sleep(0.3)


def test_a_stalled_hub_counted_gone_brings_its_browsers_back(tmp_path, fresh_redis):
    """Hub 2 stops for longer than a lease (a stall, not a death): the deciding hub detaches its browsers; when hub 2
    goes on it announces them again, and its operator is offered callers once ready."""
    with two_hubs(tmp_path / "home", fresh_redis) as (h1, h2):
        add_users(h1, ("op1", "operator", "sip:op1@127.0.0.1:5099"), ("sup1", "supervisor", None))
        worker = FakeWorker(h1, "s-w0")
        op1 = ready(h2, "op1")
        os.killpg(h2.proc.popen.pid, signal.SIGSTOP)
        assert op1_connected(h1) is False  # a supervisor's view: hub 2's heartbeat lapsed, op1 was detached
        os.killpg(h2.proc.popen.pid, signal.SIGCONT)
        assert op1_connected(h1, until=True, timeout=10)  # hub 2 announced its browsers again
        post_events(h1, queued_call("s1", worker="s-w0"))
        offer = op1.until("offer", call_id="s1", timeout=10)
        op1.send({"type": "accept", "offer_id": offer["offer_id"]})
        assert worker.next("bridge", call_id="s1", timeout=10).target == "sip:op1@127.0.0.1:5099"
        worker.close()
