"""Issue 17: the hub-wide event log in a real Redis, shared by two hubs (two RedisEventLog objects)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from pydantic import BaseModel

from tests.redis_support import redis

pytestmark = pytest.mark.timeout(60)


class Ping(BaseModel):
    type: str = "ping"
    text: str = ""


def hub_log(url: str, **kw):
    from agent_console.ops.shared_log import RedisEventLog

    return RedisEventLog(redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=0.5), **kw)


def wait_for(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_two_hubs_append_to_one_sequence_and_mirror_it_in_the_same_order(fresh_redis):
    a, b = hub_log(fresh_redis.url), hub_log(fresh_redis.url)
    try:
        woken_b = threading.Event()
        b.subscribe(woken_b.set)
        assert a.epoch == b.epoch  # one log, one epoch: a browser moving between hubs keeps its cursor

        def append(log, name):
            for i in range(100):
                log.append(Ping(text=f"{name}{i}"), roles={"operator"}, users={i % 3})

        threads = [threading.Thread(target=append, args=(x, n)) for x, n in ((a, "a"), (b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wait_for(lambda: a.last_seq == 200 and b.last_seq == 200)
        assert woken_b.is_set()
        seen_a, seen_b = a.since(0), b.since(0)
        assert [e.seq for e in seen_a] == list(range(1, 201))  # one seq for both hubs, no gap, no repeat
        assert [e.clear for e in seen_a] == [e.clear for e in seen_b]
        assert sorted(e.clear["text"] for e in seen_a) == sorted([f"a{i}" for i in range(100)] +
                                                                 [f"b{i}" for i in range(100)])
        # each hub's own appends keep their order in the shared sequence
        assert [e.clear["text"] for e in seen_a if e.clear["text"][0] == "a"] == [f"a{i}" for i in range(100)]
        e = seen_b[7]
        assert e.clear["seq"] == 8 and e.payload_for("admin") == e.clear
        assert e.visible_to(99, "operator") and not e.visible_to(99, "admin")
    finally:
        a.close()
        b.close()


def test_a_browser_that_read_up_to_seq_k_on_one_hub_resumes_on_the_other_without_gap_or_repeat(fresh_redis):
    a = hub_log(fresh_redis.url)
    for i in range(30):
        a.append(Ping(text=str(i)), roles={"operator"})
    wait_for(lambda: a.last_seq == 30)
    cursor, epoch = a.since(0)[19].seq, a.epoch  # the browser saw 20 entries on hub a, then hub a went away
    a.close()
    b = hub_log(fresh_redis.url)  # a hub started later mirrors what the stream keeps
    try:
        for i in range(30, 35):
            b.append(Ping(text=str(i)), roles={"operator"})
        wait_for(lambda: b.last_seq == 35)
        assert [e.clear["text"] for e in b.since(cursor)] == [str(i) for i in range(20, 35)]
        assert b.epoch == epoch
        assert b.since(35) == []
        assert b.since(36) is None  # a seq this Redis never gave (Redis was replaced): start from a snapshot
    finally:
        b.close()


def test_entries_older_than_the_kept_ones_ask_for_a_snapshot(fresh_redis):
    log = hub_log(fresh_redis.url, capacity=5)
    try:
        for i in range(300):  # XADD MAXLEN ~ trims in whole blocks: well past the capacity
            log.append(Ping(text=str(i)))
        wait_for(lambda: log.last_seq == 300)
        assert log.since(1) is None
        assert [e.seq for e in log.since(297)] == [298, 299, 300]
    finally:
        log.close()


def test_appends_while_redis_is_away_wait_in_order_and_arrive_when_it_returns(fresh_redis):
    """Redis stopped and started again with its data: nothing lost, nothing twice, the order kept."""
    a, b = hub_log(fresh_redis.url), hub_log(fresh_redis.url)
    try:
        a.append(Ping(text="before"))
        wait_for(lambda: b.last_seq == 1)
        fresh_redis.stop()
        t0 = time.monotonic()
        for i in range(5):
            a.append(Ping(text=f"while{i}"))  # the hub goes on (queued, never a long block under the hub's lock)
        assert time.monotonic() - t0 < 2.0
        assert a.since(1) == []  # nothing new to serve yet, and no snapshot storm
        time.sleep(1.5)  # both tails find Redis gone
        fresh_redis.start()  # the same data (append-only file): the queued appends go out, in order
        wait_for(lambda: b.last_seq == 6, timeout=15)
        assert [e.clear["text"] for e in b.since(0)] == ["before"] + [f"while{i}" for i in range(5)]
        assert [e.clear for e in a.since(0)] == [e.clear for e in b.since(0)]
    finally:
        a.close()
        b.close()


def test_entries_made_together_reach_redis_with_their_mark_in_one_step(fresh_redis):
    """The deciding hub marks the input it applied with the entries it made from it: a hub killed between the two
    would leave a mark behind its entries, and the next deciding hub would apply that input again (browsers saw
    its lines twice, CI of 2026-12-07)."""
    a, b = hub_log(fresh_redis.url), hub_log(fresh_redis.url)
    client = redis.Redis.from_url(fresh_redis.url)
    try:
        a.append(Ping(text="before"))
        with a.together("t:done", "7-0"):
            a.append(Ping(text="one"))
            time.sleep(0.3)  # a tail that polls meanwhile sees neither the entry nor the mark
            assert b.last_seq == 1 and client.get("t:done") is None
            b.append(Ping(text="other hub"))  # other hubs are not held up
            a.append(Ping(text="two"))
        assert client.get("t:done") == b"7-0"
        wait_for(lambda: b.last_seq == 4)
        assert [e.clear["text"] for e in b.since(0)] == ["before", "other hub", "one", "two"]
        with a.together("t:done", "8-0"):
            pass  # an input that made no entry is marked all the same
        assert client.get("t:done") == b"8-0"
        fresh_redis.stop()  # while Redis is away the group waits whole, then goes out with its mark
        with a.together("t:done", "9-0"):
            a.append(Ping(text="three"))
        fresh_redis.start()
        wait_for(lambda: redis.Redis.from_url(fresh_redis.url).get("t:done") == b"9-0", timeout=15)
        wait_for(lambda: a.last_seq == 5)
        assert a.since(4)[0].clear["text"] == "three"
    finally:
        a.close()
        b.close()


def test_a_group_fenced_by_a_lease_its_hub_lost_while_redis_was_away_is_not_sent(fresh_redis):
    """A deciding hub cut off from Redis loses the lease; another hub takes it and applies the same inputs again.
    When Redis answers the first hub again, its queued groups must not reach browsers a second time nor move the
    mark back."""
    a, b = hub_log(fresh_redis.url), hub_log(fresh_redis.url)
    client = redis.Redis.from_url(fresh_redis.url)
    try:
        client.set("t:lease", "hub-a")
        with a.together("t:done", "5-0", fence=("t:lease", "hub-a")):  # the lease holds: sent as before
            a.append(Ping(text="by a"))
        assert client.get("t:done") == b"5-0"
        fresh_redis.stop()
        with a.together("t:done", "6-0", fence=("t:lease", "hub-a")):
            a.append(Ping(text="again by a"))
        a.append(Ping(text="not fenced"))  # what is not in a group goes out as before
        fresh_redis.start()
        client = redis.Redis.from_url(fresh_redis.url)
        client.set("t:lease", "hub-b")  # b took over meanwhile and went further
        with b.together("t:done", "9-0", fence=("t:lease", "hub-b")):
            b.append(Ping(text="by b"))
        wait_for(lambda: not a._unsent, timeout=15)
        wait_for(lambda: b.last_seq >= 3)
        time.sleep(0.5)  # anything sent after these has reached b's mirror
        texts = [e.clear["text"] for e in b.since(0)]
        assert texts[0] == "by a" and sorted(texts[1:]) == ["by b", "not fenced"], texts
        assert client.get("t:done") == b"9-0"
    finally:
        a.close()
        b.close()


def test_a_redis_that_lost_its_data_starts_a_new_epoch(fresh_redis):
    """Redis replaced by an empty one: every hub forgets its mirror and takes the new epoch, so browsers start
    again from a snapshot instead of missing entries whose seqs were handed out again."""
    a = hub_log(fresh_redis.url)
    try:
        for i in range(3):
            a.append(Ping(text=str(i)))
        wait_for(lambda: a.last_seq == 3)
        old = a.epoch
        fresh_redis.flush()
        a.append(Ping(text="after"))
        wait_for(lambda: a.epoch != old, timeout=15)
        wait_for(lambda: [e.clear["text"] for e in a.since(0) or []] == ["after"])
        assert a.since(3) is None
    finally:
        a.close()


# ------------------------------------------------------------------ two real hub processes on one Redis
@pytest.fixture
def two_hubs(tmp_path, fresh_redis):
    """Two `hotline hub` processes on one home (one database, one set of secrets: hubs behind a load balancer)
    and one Redis."""
    from tests.browser import Hub
    from tests.ops_support import TOKEN, add_users

    hubs = [Hub(tmp_path / "home") for _ in range(2)]
    for h in hubs:
        h.env.update({"HOTLINE_HUB__WORKER_TOKEN": TOKEN, "HOTLINE_REDIS__URL": fresh_redis.url,
                      "HOTLINE_REDIS__PREFIX": "t17:"})
    try:
        hubs[0].start()  # the first migrates the database
        hubs[1].start()
        add_users(hubs[0], ("sup1", "supervisor", None), ("sup2", "supervisor", None))
        yield hubs
    finally:
        for h in hubs:
            h.stop()


def test_a_call_reported_to_one_hub_reaches_a_browser_on_the_other_and_a_browser_moves_without_gap(two_hubs):
    from ivr.contract import SpeechHeard
    from tests.ops_support import Operator, login_cookie, post_events, queued_call

    a, b = two_hubs
    on_b = Operator(b, login_cookie(b, "sup2"))
    on_b.until("snapshot")
    on_a = Operator(a, login_cookie(a, "sup1"))
    on_a.until("snapshot")
    assert on_a.welcome["epoch"] == on_b.welcome["epoch"]
    post_events(a, queued_call("multi1"))  # a worker reported to hub a
    on_b.until("call_view", call_id="multi1", timeout=10)  # hub b's browser sees it through the shared log
    k = {"call_id": "multi1", "worker": "w0"}
    post_events(a, [SpeechHeard(**k, node="consult", speaker="caller", kind="final", text=f"第{i}句")
                    for i in range(3)])
    on_a.until("call_view", line__text="第2句", timeout=10)
    last = on_a.seqs()[-1]
    on_a.close()  # hub a's browser loses its socket; the load balancer sends it to hub b
    post_events(a, [SpeechHeard(**k, node="consult", speaker="caller", kind="final", text=f"第{i}句")
                    for i in range(3, 6)])
    moved = Operator(b, login_cookie(b, "sup1"), resume_from=last, epoch=on_a.welcome["epoch"])
    moved.until("call_view", line__text="第5句", timeout=10)
    moved.drain(0.3)
    assert not [e for e in moved.events if e["type"] == "snapshot"]  # resumed, not started again
    seen = on_a.seqs() + moved.seqs()
    assert seen == sorted(seen) and len(seen) == len(set(seen))  # none twice
    on_b.drain(0.3)
    assert [s for s in on_b.seqs() if s > on_a.seqs()[0]] == [s for s in seen if s > on_a.seqs()[0]]  # none missing
    lines = [e["line"]["text"] for e in on_a.events + moved.events if e["type"] == "call_view" and e.get("line")]
    assert [x for x in lines if x.startswith("第")] == [f"第{i}句" for i in range(6)]
    moved.close(), on_b.close()


def test_a_hub_whose_redis_does_not_answer_stops_at_start_naming_the_key(tmp_path):
    from tests.browser import Hub
    from tests.sipsupport import free_udp_port

    h = Hub(tmp_path / "home")
    h.env["HOTLINE_REDIS__URL"] = f"redis://127.0.0.1:{free_udp_port()}/0"
    h.home.mkdir(parents=True)
    r = h.cli("hub")
    assert r.returncode == 2
    assert "hub not started: redis.url (HOTLINE_REDIS__URL)" in r.stderr and "does not answer" in r.stderr
    doctor = h.cli("doctor", "--json")
    checks = [json.loads(line) for line in doctor.stdout.splitlines() if line.startswith("{")]
    (redis_check,) = [c for c in checks if c.get("name") == "redis"]
    assert redis_check["status"] == "fail" and "redis.url" in redis_check["detail"]
