"""Worker events -> call records on SQLite and PostgreSQL: order tolerance, duplicates, bad batches, worker_lost."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from agent_console.app import create_app
from agent_console.auth.passwords import use_hasher
from agent_console.auth.users import create_user
from agent_console.config import HubConfig
from agent_console.models import Call, CallEventRecord
from hotline.db import make_engine
from ivr.contract import (
    CallAnswered,
    CallEnded,
    CallOffered,
    CallRejected,
    DigitsReceived,
    EventBatch,
    HandoffRequested,
    MediaStats,
    MenuEntered,
    PromptPlayed,
    WorkerLost,
)

TOKEN = "worker-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def hub(migrated_db_url):
    previous = use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    engine = make_engine(migrated_db_url)
    app = create_app(HubConfig(secret_key="k" * 32, worker_token=TOKEN, cookie_secure=False), engine)
    with app.state.sessionmaker() as db:
        create_user(db, "op", "operator", "password1")
        create_user(db, "adm", "admin", "password1")
        db.commit()
    yield app
    engine.dispose()
    use_hasher(previous)


@pytest.fixture
def c(hub):
    """An admin: sees call records with personal data in clear (operators see them masked)."""
    client = TestClient(hub)
    assert client.post("/api/auth/login", json={"username": "adm", "password": "password1"}).status_code == 200
    return client


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def full_call(call_id: str = "c1", worker: str = "w1", start: float = 0) -> list:
    k = dict(call_id=call_id, worker=worker)
    return [
        CallOffered(**k, ts=at(start), caller="13800000000", callee="12368", source="127.0.0.1:5070",
                    sip_call_id=f"sip-{call_id}"),
        CallAnswered(**k, ts=at(start + 0.1), codec="PCMU"),
        MenuEntered(**k, ts=at(start + 0.2), node="main"),
        PromptPlayed(**k, ts=at(start + 3), node="main", prompt="welcome", played_ms=2800, duration_ms=2800),
        DigitsReceived(**k, ts=at(start + 4), node="main", digits="1", method="rfc4733"),
        MenuEntered(**k, ts=at(start + 4.1), node="consult"),
        DigitsReceived(**k, ts=at(start + 6), node="consult", digits="23", method="rfc4733"),
        PromptPlayed(**k, ts=at(start + 6.5), node="consult", prompt="consult_menu", played_ms=900,
                     duration_ms=4000, interrupted=True),
        MenuEntered(**k, ts=at(start + 7), node="handoff"),
        HandoffRequested(**k, ts=at(start + 7.1), node="handoff", reason="caller_pressed_0"),
        CallEnded(**k, ts=at(start + 20), cause="caller_hangup", side="caller", status_code=200,
                  media=MediaStats(frames_rx=1000, frames_tx=990, gaps=2, max_gap_ms=61.5)),
    ]


def post(client: TestClient, events: list, headers: dict | None = None):
    body = EventBatch(events=events).model_dump(mode="json")
    return client.post("/internal/events", json=body, headers=AUTH if headers is None else headers)


def counts(hub) -> tuple[int, int]:
    with hub.state.sessionmaker() as db:
        return (db.scalar(select(func.count()).select_from(Call)),
                db.scalar(select(func.count()).select_from(CallEventRecord)))


def check_full_record(rec: dict) -> None:
    assert rec["status"] == "ended"
    assert rec["caller"] == "13800000000" and rec["callee"] == "12368" and rec["worker"] == "w1"
    assert rec["menu_path"] == ["main", "consult", "handoff"]
    assert rec["digits"] == "123"
    assert rec["prompts"] == ["welcome", "consult_menu"]
    assert (rec["end_cause"], rec["end_side"], rec["status_code"]) == ("caller_hangup", "caller", 200)
    assert rec["media"]["frames_rx"] == 1000 and rec["media"]["max_gap_ms"] == 61.5
    assert datetime.fromisoformat(rec["offered_at"]) == T0
    assert datetime.fromisoformat(rec["answered_at"]) == at(0.1)
    assert datetime.fromisoformat(rec["ended_at"]) == at(20)


def test_events_build_a_call_record(hub, c):
    events = full_call()
    r = post(c, events[:5])
    assert r.status_code == 200 and r.json() == {"accepted": 5, "duplicates": 0}
    mid = c.get("/api/calls/c1").json()
    assert mid["status"] == "answered" and mid["menu_path"] == ["main"] and mid["ended_at"] is None
    assert post(c, events[5:]).json() == {"accepted": 6, "duplicates": 0}

    calls = c.get("/api/calls").json()
    assert [x["call_id"] for x in calls] == ["c1"]
    check_full_record(calls[0])
    detail = c.get("/api/calls/c1").json()
    check_full_record(detail)
    assert detail["sip_call_id"] == "sip-c1" and detail["source"] == "127.0.0.1:5070"
    assert [e["type"] for e in detail["events"]] == [e.type for e in events]
    assert c.get("/api/calls/nope").json()["detail"] == "未找到该通话记录"

    op = TestClient(hub)
    assert op.post("/api/auth/login", json={"username": "op", "password": "password1"}).status_code == 200
    assert op.get("/api/calls").json()[0]["caller"] == "138****0000"
    assert "13800000000" not in op.get("/api/calls/c1").text


def test_out_of_order_and_duplicates(hub, c):
    events = full_call()
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    for i in range(0, len(shuffled), 3):  # small batches in a scrambled order
        assert post(c, shuffled[i:i + 3]).status_code == 200
    check_full_record(c.get("/api/calls/c1").json())

    # a restarted worker resends its whole spool, with a duplicate inside the batch too
    r = post(c, events + [events[0]])
    assert r.json() == {"accepted": 0, "duplicates": len(events) + 1}
    assert counts(hub) == (1, len(events))
    check_full_record(c.get("/api/calls/c1").json())

    # an ended call stays ended: a late event adds to the record but does not reopen it
    late = [DigitsReceived(call_id="c1", worker="w1", ts=at(5), node="main", digits="9"),
            CallEnded(call_id="c1", worker="w1", ts=at(30), cause="timeout", side="system")]
    assert post(c, late).json() == {"accepted": 2, "duplicates": 0}
    rec = c.get("/api/calls/c1").json()
    assert rec["status"] == "ended" and rec["digits"] == "1923" and rec["end_cause"] == "caller_hangup"

    m = c.get("/metrics", headers=AUTH).text
    assert 'hotline_hub_events_ingested_total{type="menu_entered"} 3.0' in m
    assert f"hotline_hub_events_duplicate_total {len(events) + 1}.0" in m


def test_rejected_call(hub, c):
    events = [CallOffered(call_id="r1", worker="w1", ts=at(0), caller="anon", callee="12368",
                          source="10.0.0.9:5060"),
              CallRejected(call_id="r1", worker="w1", ts=at(0.01), status_code=403, reason="acl_denied")]
    assert post(c, events).status_code == 200
    rec = c.get("/api/calls/r1").json()
    assert (rec["status"], rec["end_cause"], rec["end_side"], rec["status_code"]) == \
        ("rejected", "acl_denied", "ivr", 403)


def test_bad_batch_changes_nothing(hub, c):
    good = EventBatch(events=full_call()[:3]).model_dump(mode="json")["events"]
    broken = dict(good[1])
    del broken["call_id"]
    r = c.post("/internal/events", json={"v": 1, "events": [good[0], broken, good[2]]}, headers=AUTH)
    assert r.status_code == 422
    r = c.post("/internal/events", json={"v": 1, "events": [good[0], {**good[1], "type": "nonsense"}]},
               headers=AUTH)
    assert r.status_code == 422
    r = c.post("/internal/events", json={"v": 2, "events": good}, headers=AUTH)
    assert r.status_code == 422
    r = c.post("/internal/events", content=b"{not json", headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 422
    r = c.post("/internal/events", json={"v": 1, "events": [good[0], {**good[1], "event_id": "x" * 200}]},
               headers=AUTH)
    assert r.status_code == 422
    assert counts(hub) == (0, 0)


def test_worker_token_required(hub, c):
    events = full_call()[:1]
    assert post(c, events, headers={}).status_code == 401
    assert post(c, events, headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    # a console login is not a worker token
    cookie = {"Cookie": f"hotline_session={c.cookies['hotline_session']}"}
    assert post(c, events, headers=cookie).status_code == 401
    assert counts(hub) == (0, 0)


def test_worker_lost_closes_open_calls_of_that_worker_only(hub, c):
    open_w1 = full_call("a", "w1", 0)[:5]
    ended_w1 = full_call("b", "w1", 1)
    open_w2 = full_call("c", "w2", 2)[:3]
    assert post(c, open_w1 + ended_w1 + open_w2).status_code == 200
    lost = WorkerLost(worker="w1", ts=at(60), detail="exit code -6")
    assert post(c, [lost]).json() == {"accepted": 1, "duplicates": 0}

    recs = {x["call_id"]: x for x in c.get("/api/calls").json()}
    a = recs["a"]
    assert (a["status"], a["end_cause"], a["end_side"]) == ("ended", "worker_lost", "system")
    assert datetime.fromisoformat(recs["a"]["ended_at"]) == at(60)
    assert recs["a"]["menu_path"] == ["main"] and recs["a"]["digits"] == "1"
    assert recs["b"]["end_cause"] == "caller_hangup"
    assert recs["c"]["status"] == "answered" and recs["c"]["ended_at"] is None

    # the restarted worker's new calls are not touched; a late event of a lost call keeps it closed
    new_call = full_call("d", "w1", 120)[:2]
    late = [MenuEntered(call_id="e", worker="w1", ts=at(50), node="main")]
    assert post(c, new_call + late).status_code == 200
    recs = {x["call_id"]: x for x in c.get("/api/calls").json()}
    assert recs["d"]["status"] == "answered"
    assert recs["e"]["status"] == "ended" and recs["e"]["end_cause"] == "worker_lost"
    assert [x["call_id"] for x in c.get("/api/calls?limit=3").json()] == ["d", "e", "c"]

    m = c.get("/metrics", headers=AUTH).text
    assert "hotline_hub_calls_open 2.0" in m  # c and d


def test_concurrent_batches_store_each_event_once(hub):
    """Workers resending overlapping spools at the same time: every event stored exactly once."""
    import threading

    events = [e for n in range(6) for e in full_call(f"k{n}", f"w{n % 2}", n)]
    results: list[dict] = []
    errors: list[BaseException] = []

    def send(offset: int) -> None:
        try:
            with TestClient(hub) as client:
                for i in range(offset, len(events), 7):
                    r = post(client, events[i:i + 11])
                    assert r.status_code == 200, r.text
                    results.append(r.json())
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=send, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sum(r["accepted"] for r in results) == len(events)
    assert counts(hub) == (6, len(events))
