"""The console's state in-process on a real SQLite file and on PostgreSQL: the event log's bounds, transcript
lines, a hub restart that loses nobody in the queue, work-order numbering and drafts."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import select

from agent_console.app import create_app
from agent_console.auth.passwords import use_hasher
from agent_console.auth.users import create_user
from agent_console.config import HubConfig
from agent_console.models import Call
from agent_console.ops.eventlog import EventLog
from agent_console.ops.live import LiveCall
from agent_console.work_orders.call_facts import category_from_menu, draft_for_call
from agent_console.work_orders.service import create_order
from hotline.db import make_engine
from ivr.contract import (
    BridgeUpdate,
    CallEnded,
    CommandEnvelope,
    EventBatch,
    KbDecided,
    QueueLeft,
    SpeechHeard,
    WorkerHello,
)
from tests.ops_support import queued_call
from work_orders.calendar import WorkCalendar
from work_orders.models import WorkOrder

TOKEN = "worker-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Ping(BaseModel):
    type: str = "ping"
    text: str = ""


def test_event_log_keeps_the_last_n_and_says_when_a_resume_is_too_old():
    log = EventLog(capacity=5)
    woken = []
    log.subscribe(lambda: woken.append(1))
    for i in range(8):
        log.append(Ping(text=f"电话1380000000{i}"), roles={"admin"}, users={7})
    assert log.last_seq == 8 and len(woken) == 8
    assert [e.seq for e in log.since(3)] == [4, 5, 6, 7, 8]
    assert log.since(2) is None  # 3 is gone: the client needs a snapshot
    assert log.since(8) == [] and log.since(9) is None
    e = log.since(7)[0]
    assert e.visible_to(7, "operator") and e.visible_to(1, "admin") and not e.visible_to(1, "operator")
    assert e.payload_for("admin")["text"] == "电话13800000007"
    assert e.payload_for("operator")["text"] == "电话138****0007" and e.payload_for("operator")["seq"] == 8


def test_transcript_lines_partials_are_replaced_by_finals_per_speaker():
    at = datetime(2026, 11, 30, tzinfo=UTC)
    c = LiveCall("c1", "w0", at)
    a = c.speech("caller", "partial", "我想", at)
    b = c.speech("operator", "partial", "您好", at)
    a2 = c.speech("caller", "final", "我想问立案", at)
    assert a.line_id == a2.line_id != b.line_id and a2.final
    c.speech("operator", "final", "您好请讲", at)
    n = c.speech("caller", "final", "谢谢", at)
    assert [x.text for x in c.lines.values()] == ["我想问立案", "您好请讲", "谢谢"] and n.line_id == "c1:3"
    assert c.speech("caller", "started", "", at) is None and c.speech("caller", "partial", "", at) is None


@pytest.fixture
def db_file(migrated_db_url):
    previous = use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    engine = make_engine(migrated_db_url)
    yield engine
    engine.dispose()
    use_hasher(previous)


def app_on(engine):
    return create_app(HubConfig(secret_key="k" * 32, worker_token=TOKEN, cookie_secure=False), engine)


def post(client, events):
    r = client.post("/internal/events", json=EventBatch(events=events).model_dump(mode="json"), headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_restarted_hub_rebuilds_the_queue_and_the_talking_call(db_file):
    app = app_on(db_file)
    with app.state.sessionmaker() as db:
        op = create_user(db, "op", "operator", "password1", sip_uri="sip:op@127.0.0.1")
        db.commit()
        op_id = op.id
    t0 = datetime.now(UTC) - timedelta(minutes=3)
    with TestClient(app) as c:
        for i, cid in enumerate(["q1", "q2", "q3", "talk"]):
            post(c, queued_call(cid, t0=t0 + timedelta(seconds=i)))
        post(c, [QueueLeft(call_id="q2", worker="w0", node="consult_staff", outcome="hangup")])
        ops = app.state.ops
        with ops.lock:  # an operator accepted "talk" and the bridge connected
            ops.attach(type("U", (), {"id": op_id, "username": "op", "display_name": "op", "sip_uri": "sip:op@x",
                                      "skills": [], "role": "operator"})(), lambda m: None)
            ops._effects(ops.router.set_presence(op_id, "ready"))
        offer = ops.router.operators[op_id].offer
        assert offer.call_id == "q1"
        ops._effects(ops.router.decline(op_id, offer.offer_id))
        offer = ops.router.operators[op_id].offer
        ops._effects(ops.router.decline(op_id, offer.offer_id))
        offer = ops.router.operators[op_id].offer
        assert offer.call_id == "talk"
        with ops.lock:
            ops._effects(ops.router.accept(op_id, offer.offer_id))
        post(c, [BridgeUpdate(call_id="talk", worker="w0", offer_id=offer.offer_id, target="sip:op@x",
                              state="connected")])
        ops.persist.flush()
        assert [q.call_id for q in ops.router.waiting()] == ["q1", "q3"]

    restarted = app_on(db_file).state.ops  # a new hub process on the same database
    assert [q.call_id for q in restarted.router.waiting()] == ["q1", "q3"]
    assert [q.category for q in restarted.router.waiting()] == ["consult", "consult"]
    assert restarted.router.waiting()[0].joined_at == pytest.approx((t0 + timedelta(seconds=9)).timestamp())
    assert restarted.calls["q1"].caller == "13812345678"
    assert [x.text for x in restarted.calls["q1"].lines.values()] == ["我想问一下怎么立案"]
    assert restarted.calls["talk"].state == "talking"
    assert restarted._accepted_by["talk"] == op_id
    assert "q2" not in restarted.calls or restarted.calls["q2"].state != "queued"


def test_work_order_numbers_per_day_and_the_draft(db_file):
    app = app_on(db_file)
    cal = WorkCalendar(tz="Asia/Shanghai")
    with app.state.sessionmaker() as db:
        late = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)  # 00:30 on 1 December in Shanghai
        numbers = [create_order(db, cal, now=late - timedelta(hours=1), category="consult").number,
                   create_order(db, cal, now=late, category="query").number,
                   create_order(db, cal, now=late, category="urge").number]
        db.commit()
        assert numbers == ["12368-20261130-0001", "12368-20261201-0001", "12368-20261201-0002"]
        assert db.scalar(select(WorkOrder.status).where(WorkOrder.number == numbers[0])) == "received"
    assert cal.next_workday(date(2026, 9, 30)) == date(2026, 10, 8)  # National Day week
    assert category_from_menu(["main", "contact_judge"]) == "contact_judge"
    assert category_from_menu(["main", "case_query", "case_number", "query_done"]) == "query"
    assert category_from_menu(["welcome", "main"]) is None

    with TestClient(app) as c:
        events = queued_call("d1", said="（2023）粤0305民初1234号什么时候开庭", category="query")
        events = [e for e in events if e.type != "menu_entered"]  # no menu: the category comes from elsewhere
        post(c, events + [KbDecided(call_id="d1", worker="w0", node="consult", decision="handoff", reason="low"),
                          SpeechHeard(call_id="d1", worker="w0", node="x", speaker="operator", kind="final",
                                      text="我帮您查一下"),
                          CallEnded(call_id="d1", worker="w0", cause="caller_hangup", side="caller")])
        with app.state.sessionmaker() as db:
            draft = draft_for_call(db, db.get(Call, "d1"), queue_category="query")
        assert (draft.category, draft.category_source) == ("query", "queue")
        assert draft.case_number == "（2023）粤0305民初1234号" and draft.citizen_phone == "13812345678"
        assert draft.content == "（2023）粤0305民初1234号什么时候开庭"
        assert [x["speaker"] for x in draft.transcript] == ["caller", "operator"]


def test_a_worker_hello_ends_the_calls_that_worker_no_longer_has(db_file):
    """A restarted worker (or one whose call_ended never arrived) says which calls it has: the others of that
    worker leave the queue and the live view, their records close as worker_lost, and a restarted hub does not
    bring them back."""
    app = app_on(db_file)
    with app.state.sessionmaker() as db:
        op_id = create_user(db, "op", "operator", "password1", sip_uri="sip:op@127.0.0.1").id
        db.commit()
    t0 = datetime.now(UTC) - timedelta(minutes=3)
    with TestClient(app) as c:
        for i, (cid, worker) in enumerate([("gone", "w0"), ("kept", "w0"), ("talk", "w0"), ("other", "w1")]):
            post(c, queued_call(cid, worker=worker, t0=t0 + timedelta(seconds=i)))
        ops = app.state.ops
        with ops.lock:  # the operator talks on "talk" (a call the restarted worker lost too)
            ops.attach(type("U", (), {"id": op_id, "username": "op", "display_name": "op", "sip_uri": "sip:op@x",
                                      "skills": [], "role": "operator"})(), lambda m: None)
            ops._effects(ops.router.set_presence(op_id, "ready"))
            offer = ops.router.operators[op_id].offer
            ops._effects(ops.router.decline(op_id, offer.offer_id))  # "gone" is declined
            ops._effects(ops.router.decline(op_id, ops.router.operators[op_id].offer.offer_id))  # "kept" too
            offer = ops.router.operators[op_id].offer
            assert offer.call_id == "talk"
            ops._effects(ops.router.accept(op_id, offer.offer_id))
        post(c, [BridgeUpdate(call_id="talk", worker="w0", offer_id=offer.offer_id, target="sip:op@x",
                              state="connected")])
        assert [q.call_id for q in ops.router.waiting()] == ["gone", "kept", "other"]

        with c.websocket_connect("/internal/worker/ws?worker=w0", headers=AUTH) as ws:
            ws.send_text(WorkerHello(worker="w0", calls=["kept"]).model_dump_json())
            status = CommandEnvelope.model_validate_json(ws.receive_text()).command
            assert (status.type, status.call_id, status.position) == ("queue_status", "kept", 0)
        ops.persist.flush()
        assert [q.call_id for q in ops.router.waiting()] == ["kept", "other"]
        assert ops.calls["gone"].state == ops.calls["talk"].state == "ended"
        assert ops.calls["kept"].state == "queued" and ops.calls["other"].state == "queued"
        assert ops.router.operators[op_id].state == "wrap_up"  # the call it talked on is over
        with app.state.sessionmaker() as db:
            rows = {x.call_id: (x.status, x.end_cause, x.end_side) for x in db.scalars(select(Call))}
        assert rows["gone"] == rows["talk"] == ("ended", "worker_lost", "system")
        assert rows["kept"][0] == rows["other"][0] == "answered"

        # a call the hub first heard of after the worker's socket opened is not judged by that hello
        post(c, queued_call("late", worker="w0"))
        ops.on_worker_hello("w0", ["kept"], opened_at=ops.calls["late"].seen_at - 0.5)
        assert ops.calls["late"].state == "queued"

    restarted = app_on(db_file).state.ops
    assert [q.call_id for q in restarted.router.waiting()] == ["kept", "other", "late"]
    assert "gone" not in restarted.calls and "talk" not in restarted.calls


def test_a_worker_that_stays_away_has_its_calls_ended_and_one_that_comes_back_keeps_them(db_file):
    """A worker host that dies never says so: once its socket has stayed closed ``worker_lost_after_s`` its calls
    leave the queue as worker_lost. A worker that reconnects in time keeps its calls."""
    app = create_app(HubConfig(secret_key="k" * 32, worker_token=TOKEN, cookie_secure=False,
                               worker_lost_after_s=0.5), db_file)
    with TestClient(app) as c:
        post(c, queued_call("dead", worker="w1") + queued_call("alive", worker="w0"))
        ops = app.state.ops
        for worker, call in (("w1", "dead"), ("w0", "alive")):
            with c.websocket_connect(f"/internal/worker/ws?worker={worker}", headers=AUTH) as ws:
                ws.send_text(WorkerHello(worker=worker, calls=[call]).model_dump_json())
                ws.receive_text()  # where its queued caller stands
        with c.websocket_connect("/internal/worker/ws?worker=w0", headers=AUTH) as ws:  # w0 is back at once
            ws.send_text(WorkerHello(worker="w0", calls=["alive"]).model_dump_json())
            ws.receive_text()
            deadline = time.monotonic() + 5
            while ops.calls["dead"].state != "ended" and time.monotonic() < deadline:
                ops.tick()
                time.sleep(0.1)
            assert ops.calls["dead"].state == "ended" and ops.calls["alive"].state == "queued"
            assert [q.call_id for q in ops.router.waiting()] == ["alive"]
        ops.persist.flush()
        with app.state.sessionmaker() as db:
            rows = {x.call_id: (x.status, x.end_cause) for x in db.scalars(select(Call))}
        assert rows["dead"] == ("ended", "worker_lost") and rows["alive"][0] == "answered"


def test_the_live_view_keeps_only_the_latest_ended_calls(db_file):
    """The 1-hour soak (70 calls a minute) grew the hub while ended calls piled up for their hour: only the latest
    ENDED_KEEP_MAX stay, the oldest go first; live calls are never dropped."""
    from agent_console.ops import hub as ops_hub

    app = create_app(HubConfig(secret_key="k" * 32, worker_token=TOKEN, cookie_secure=False), db_file)
    with TestClient(app) as c:
        ops = app.state.ops
        n = ops_hub.ENDED_KEEP_MAX + 40
        for i in range(n):
            post(c, queued_call(f"e{i}") + [CallEnded(call_id=f"e{i}", worker="w0", cause="caller_hangup",
                                                      side="caller")])
        post(c, queued_call("live"))
        ops.tick()
        ended = [k for k, v in ops.calls.items() if v.state == "ended"]
        assert len(ended) == ops_hub.ENDED_KEEP_MAX
        assert "e0" not in ops.calls and f"e{n - 1}" in ops.calls and ops.calls["live"].state == "queued"
