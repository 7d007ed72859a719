"""The hub's callback dispatcher (agent_console/work_orders/callbacks.py) in-process on a real SQLite file, with a
stand-in worker on the real command socket and a movable work-order clock: what is due goes to a worker with a free
slot as a ``CallbackCommand``; outcomes through the real ingest path rate or retry the order (once per event, only
for the current attempt); no worker, a lost command, a worker without a free slot, a worker that died, office
hours, the concurrency limit and a hub restart lose nothing."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from agent_console.app import create_app
from agent_console.auth.passwords import use_hasher
from agent_console.config import HubConfig
from agent_console.models import CallEventRecord
from hotline.db import make_engine, upgrade_engine
from ivr.contract import (
    CallAnswered,
    CallbackCommand,
    CallbackOutcome,
    CallEnded,
    CallOffered,
    CommandEnvelope,
    EventBatch,
    MessageRecorded,
    WorkerHello,
)
from work_orders import lists
from work_orders import store as orders
from work_orders.callbacks import spoken_summary
from work_orders.models import WorkOrder, WorkOrderHistory, WorkOrderNotice
from work_orders.rules import Actor
from work_orders.settings import AutoCallbackSettings, WorkOrderSettings

TOKEN = "worker-token-for-callback-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CN = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 30, 10, 0, tzinfo=CN)
SUP = Actor("sup", "supervisor")


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def engine(tmp_path):
    previous = use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade_engine(engine)
    yield engine
    engine.dispose()
    use_hasher(previous)


def make_app(engine, clock: Clock, **auto):
    settings = WorkOrderSettings(auto_callback=AutoCallbackSettings(
        **{"enabled": True, "target": "sip:{number}@pbx.court.example", "interval_s": 3600, **auto}))
    app = create_app(HubConfig(secret_key="k" * 32, worker_token=TOKEN, cookie_secure=False, work_orders=settings),
                     engine)
    app.state.work_orders.clock = clock
    return app


def answered(app, phone: str = "13800000002", feedback: str = "已转告王明法官，法官助理将于明日回电。") -> int:
    ctx = app.state.work_orders
    with app.state.sessionmaker() as db:
        o = orders.create(db, ctx, actor=SUP, category="contact_judge", content="联系法官", citizen_phone=phone)
        db.commit()
        oid = o.id
        orders.move(db, oid, "dispatch", SUP, {"assignee": "民一庭"}, ctx)
        orders.move(db, oid, "answer", SUP, {"feedback": feedback}, ctx)
    return oid


def order(app, oid: int) -> WorkOrder:
    with app.state.sessionmaker() as db:
        return db.get(WorkOrder, oid)


def history(app, oid: int) -> list[tuple[str, str, str]]:
    with app.state.sessionmaker() as db:
        return [(h.action, h.actor, h.note) for h in db.scalars(
            select(WorkOrderHistory).where(WorkOrderHistory.order_id == oid).order_by(WorkOrderHistory.id))]


def connect(c: TestClient, app, worker: str = "w0"):
    ws = c.websocket_connect(f"/internal/worker/ws?worker={worker}", headers=AUTH)
    sock = ws.__enter__()
    sock.send_text(WorkerHello(worker=worker).model_dump_json())
    deadline = time.monotonic() + 5
    while not app.state.ops.workers.is_connected(worker):
        assert time.monotonic() < deadline, "worker socket never registered"
        time.sleep(0.01)
    return ws, sock


def received(sock) -> CallbackCommand:
    cmd = CommandEnvelope.model_validate_json(sock.receive_text()).command
    assert cmd.type == "callback"
    return cmd


def post(c: TestClient, *events) -> dict:
    r = c.post("/internal/events", json=EventBatch(events=list(events)).model_dump(mode="json"), headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def outcome(cmd: CallbackCommand, outcome: str, **kw) -> CallbackOutcome:
    return CallbackOutcome(call_id=cmd.call_id, worker="w0", order_id=cmd.order_id, attempt=cmd.attempt,
                           outcome=outcome, **kw)


def test_due_order_goes_to_a_worker_and_a_poor_rating_reopens_it_once(engine):
    clock = Clock(MONDAY)
    app = make_app(engine, clock)
    with TestClient(app) as c:
        oid = answered(app)
        callbacks = app.state.callbacks
        assert callbacks.run_once() == []  # no worker connected: the order stays due, unchanged
        assert order(app, oid).status == "answered" and order(app, oid).next_callback_at is not None
        ws, sock = connect(c, app)
        try:
            sent = callbacks.run_once()
            cmd = received(sock)
            assert sent == [cmd] and (cmd.order_id, cmd.attempt) == (oid, 1)
            assert cmd.target == "sip:13800000002@pbx.court.example"
            assert cmd.summary == "已转告王明法官，法官助理将于明日回电。" and cmd.ring_timeout_s == 30
            o = order(app, oid)
            assert (o.status, o.callback_attempts, o.next_callback_at) == ("callback", 1, None)
            assert history(app, oid)[-1][:2] == ("start_callback", "自动回访")
            assert callbacks.run_once() == []  # in flight: not started twice
            with app.state.sessionmaker() as db:  # the outbound call names its order
                link = db.scalars(select(CallEventRecord).where(CallEventRecord.call_id == cmd.call_id)).one()
                assert link.type == "callback_dispatched" and link.payload["order_id"] == oid

            post(c, CallOffered(call_id=cmd.call_id, worker="w0", caller="sip:12368@127.0.0.1", callee=cmd.target,
                                source="127.0.0.1:5070", direction="outbound"),
                 CallAnswered(call_id=cmd.call_id, worker="w0"))
            rated = outcome(cmd, "rated", rating=2, method="keypad")
            assert post(c, rated) == {"accepted": 1, "duplicates": 0}
            o = order(app, oid)
            assert (o.status, o.rating, o.reopen_count) == ("reopened", 2, 1)
            assert history(app, oid)[-1] == ("rate", "自动回访", "回访评价2分（不满意），工单重新办理")
            with app.state.sessionmaker() as db:
                alerts = db.scalars(select(WorkOrderNotice).where(WorkOrderNotice.order_id == oid,
                                                                 WorkOrderNotice.audience == "supervisor")).all()
                assert [n.kind for n in alerts] == ["rate"]
            lines = len(history(app, oid))
            assert post(c, rated) == {"accepted": 0, "duplicates": 1}  # the same event again: nothing
            late = outcome(cmd, "rated", rating=5, method="keypad")  # another event for a finished attempt
            post(c, late)
            assert len(history(app, oid)) == lines and order(app, oid).status == "reopened"
        finally:
            ws.__exit__(None, None, None)


def test_busy_is_retried_later_and_a_rating_5_closes_the_second_attempt(engine):
    clock = Clock(MONDAY)
    app = make_app(engine, clock)
    with TestClient(app) as c:
        oid = answered(app)
        ws, sock = connect(c, app)
        try:
            app.state.callbacks.run_once()
            first = received(sock)
            post(c, outcome(first, "busy", status_code=486))
            o = order(app, oid)
            assert (o.status, o.callback_attempts) == ("callback", 1)
            assert o.next_callback_at == (MONDAY + timedelta(minutes=30)).astimezone(o.next_callback_at.tzinfo)
            assert history(app, oid)[-1] == ("callback_failed", "自动回访",
                                             "第1次回访未成功（占线（486）），30分钟后再次回访")
            post(c, outcome(first, "no_answer", status_code=408))  # a second report of that attempt: ignored
            assert history(app, oid)[-1][0] == "callback_failed" and len(history(app, oid)) == 5
            assert app.state.callbacks.run_once() == []  # not due before its retry time
            clock.at = MONDAY + timedelta(minutes=31)
            app.state.callbacks.run_once()
            second = received(sock)
            assert second.attempt == 2 and second.call_id != first.call_id
            post(c, outcome(first, "rated", rating=1, method="keypad"))  # the old attempt: ignored
            assert order(app, oid).status == "callback"
            post(c, outcome(second, "rated", rating=5, method="speech"))
            o = order(app, oid)
            assert (o.status, o.rating, o.callback_attempts, o.next_callback_at) == ("closed", 5, 2, None)
        finally:
            ws.__exit__(None, None, None)


def test_a_worker_without_a_slot_a_lost_command_and_a_dead_worker_put_the_order_back(engine, monkeypatch):
    clock = Clock(MONDAY)
    app = make_app(engine, clock, outcome_timeout_s=120)
    with TestClient(app) as c:
        a, b = answered(app, "13800000011"), answered(app, "13800000012")
        ws, sock = connect(c, app)
        try:
            callbacks = app.state.callbacks
            callbacks.run_once()
            first, second = received(sock), received(sock)
            assert {first.order_id, second.order_id} == {a, b}
            # the worker had no free slot after all: due again in a minute, nobody was called
            post(c, outcome(first, "failed", reason="no_slot"))
            o = order(app, first.order_id)
            assert o.status == "callback" and o.next_callback_at is not None
            assert history(app, first.order_id)[-1][0] == "callback_requeued"
            # the other never reports (its worker died): after outcome_timeout_s it is not reached, due again
            clock.at = MONDAY + timedelta(seconds=121)
            monkeypatch.setattr(app.state.ops.workers, "send_command", lambda w, cmd: False)  # and the socket fails
            assert callbacks.run_once() == []
            o = order(app, second.order_id)
            assert history(app, second.order_id)[-1][2] == "第1次回访未成功（未收到回访结果），30分钟后再次回访"
            assert o.next_callback_at is not None and o.status == "callback"
            # the requeued one was due again, started (attempt 2) but could not be sent: back due, not lost
            o = order(app, first.order_id)
            assert [h[0] for h in history(app, first.order_id)][-3:] == ["callback_requeued", "start_callback",
                                                                        "callback_requeued"]
            assert (o.callback_attempts, o.status) == (2, "callback") and o.next_callback_at is not None
        finally:
            ws.__exit__(None, None, None)


def test_office_hours_concurrency_and_free_slots(engine):
    clock = Clock(MONDAY)
    app = make_app(engine, clock, max_concurrent=2, reserve_slots=1)
    with TestClient(app) as c:
        ids = [answered(app, f"1380000002{i}") for i in range(3)]
        answered(app, "分机12")  # no dialable number: left to staff
        ws, sock = connect(c, app)
        try:
            callbacks = app.state.callbacks
            clock.at = MONDAY.replace(hour=17, minute=30)  # office hours end
            assert callbacks.run_once() == []
            clock.at = datetime(2026, 12, 5, 10, tzinfo=CN)  # a Saturday
            assert callbacks.run_once() == []
            clock.at = datetime(2026, 12, 7, 8, 29, tzinfo=CN)  # Monday, before 08:30
            assert callbacks.run_once() == []
            clock.at = datetime(2026, 12, 7, 8, 30, tzinfo=CN)
            # two inbound calls on the worker: with one slot reserved it can take one callback
            post(c, *[CallOffered(call_id=f"in{i}", worker="w0", caller="139", callee="12368", source="x")
                      for i in range(2)])
            sent = callbacks.run_once()
            assert len(sent) == 1 and received(sock).order_id == ids[0]
            post(c, *[CallAnswered(call_id=f"in{i}", worker="w0") for i in range(2)])
            assert callbacks.run_once() == []  # 2 calls + 1 callback: no slot beyond the reserved one
            post(c, *[CallEnded(call_id=f"in{i}", worker="w0", cause="caller_hangup", side="caller")
                      for i in range(2)])
            sent = callbacks.run_once()  # max_concurrent 2: one more
            assert [s.order_id for s in sent] == [ids[1]] and received(sock).order_id == ids[1]
            post(c, outcome(sent[0], "rated", rating=4, method="keypad"))
            last = callbacks.run_once()
            assert [s.order_id for s in last] == [ids[2]] and received(sock).order_id == ids[2]
            post(c, outcome(last[0], "rated", rating=4, method="keypad"))
            assert callbacks.run_once() == []  # only the order without a number is due: it waits for staff
        finally:
            ws.__exit__(None, None, None)


def test_a_restarted_hub_applies_an_outcome_it_stored_but_had_not_applied(engine):
    clock = Clock(MONDAY)
    app = make_app(engine, clock)
    with TestClient(app) as c:
        oid = answered(app)
        ws, sock = connect(c, app)
        try:
            app.state.callbacks.run_once()
            cmd = received(sock)
        finally:
            ws.__exit__(None, None, None)
    # the event was stored, the hub stopped before rating the order
    e = outcome(cmd, "rated", rating=4, method="keypad")
    with app.state.sessionmaker() as db:
        db.add(CallEventRecord(event_id=e.event_id, call_id=e.call_id, worker="w0", type=e.type, ts=e.ts,
                               received_at=e.ts, payload=e.model_dump(mode="json")))
        db.commit()
    assert order(app, oid).status == "callback"
    again = make_app(engine, clock)
    with TestClient(again):
        deadline = time.monotonic() + 5
        while order(again, oid).status != "closed":
            assert time.monotonic() < deadline, history(again, oid)
            time.sleep(0.05)
        assert again.state.callbacks.recover() == 0  # applied once


def after_hours_message(c: TestClient, at: datetime, phone: str) -> str:
    """A caller leaves a message after hours: the worker's events through the real ingest path (the hub files it)."""
    call_id = uuid.uuid4().hex
    post(c, CallOffered(call_id=call_id, worker="w0", caller=f"sip:{phone}@127.0.0.1", callee="12368",
                        source="127.0.0.1:5070", ts=at),
         CallAnswered(call_id=call_id, worker="w0", ts=at),
         MessageRecorded(call_id=call_id, worker="w0", ts=at + timedelta(seconds=20), node="after_hours",
                         purpose="after_hours", recording=f"{call_id}-after_hours.wav", duration_s=6.0,
                         text="能不能帮我转告法官回个电话"),
         CallEnded(call_id=call_id, worker="w0", ts=at + timedelta(seconds=22), cause="after_hours_message",
                   side="ivr"))
    return call_id


def on_callback_list(app, oid: int) -> bool:
    ctx = app.state.work_orders
    now = ctx.now()
    cond = lists.conditions("callbacks", now=now, today=ctx.calendar.local_date(now), settings=ctx.settings)
    with app.state.sessionmaker() as db:
        return db.scalar(select(WorkOrder.id).where(WorkOrder.id == oid, cond)) is not None


def test_an_after_hours_message_is_called_back_on_its_day_retried_and_leaves_the_list_when_reached(engine):
    """Issue 16 part 7: the callback promised after hours is placed by the dispatcher on the callback day, in office
    hours, says what it is about (purpose after_hours, no rating), is retried like a rated one and, once the
    citizen answered, leaves the 回访单 list; the order itself goes on (status, rated-callback count untouched)."""
    saturday_night = datetime(2026, 12, 5, 21, 0, tzinfo=CN)
    monday = datetime(2026, 12, 7, 9, 0, tzinfo=CN)
    clock = Clock(saturday_night)
    app = make_app(engine, clock)
    with TestClient(app) as c:
        ws, sock = connect(c, app)
        try:
            call_id = after_hours_message(c, saturday_night, "13800000031")
            with app.state.sessionmaker() as db:
                o = db.scalars(select(WorkOrder).where(WorkOrder.call_id == call_id)).one()
            oid = o.id
            assert o.callback_due.isoformat() == "2026-12-07" and o.status == "received", o.content
            callbacks = app.state.callbacks
            assert callbacks.run_once() == [] and not on_callback_list(app, oid)  # closed, and not due yet
            clock.at = monday
            assert on_callback_list(app, oid)
            sent = callbacks.run_once()
            assert len(sent) == 1, history(app, oid)  # (never placed before issue 16 part 7)
            cmd = received(sock)
            assert sent == [cmd] and (cmd.order_id, cmd.attempt, cmd.purpose) == (oid, 1, "after_hours")
            assert cmd.target == "sip:13800000031@pbx.court.example" and cmd.summary == ""
            assert history(app, oid)[-1] == ("after_hours_callback", "自动回访", "第1次自动回电（非工作时间留言）")
            assert callbacks.run_once() == []  # in flight: not placed twice
            post(c, outcome(cmd, "no_answer", status_code=408))
            assert history(app, oid)[-1] == ("after_hours_callback_failed", "自动回访",
                                             "第1次留言回电未接通（无人接听（408）），30分钟后再次回电")
            clock.at = monday + timedelta(minutes=20)
            assert callbacks.run_once() == [] and on_callback_list(app, oid)
            clock.at = monday + timedelta(minutes=31)
            assert len(callbacks.run_once()) == 1
            second = received(sock)
            assert (second.attempt, second.purpose) == (2, "after_hours")
            with app.state.sessionmaker() as db:
                orders.move(db, oid, "dispatch", SUP, {"assignee": "民一庭"}, app.state.work_orders)
            assert on_callback_list(app, oid)  # dispatched meanwhile: the promised callback still stands
            post(c, outcome(cmd, "reached"))  # the old attempt: ignored
            assert history(app, oid)[-1][0] == "dispatch"
            post(c, outcome(second, "reached"))
            o = order(app, oid)
            assert (o.status, o.callback_due, o.callback_attempts, o.rating) == ("dispatched", None, 0, None)
            assert history(app, oid)[-1] == ("after_hours_callback_done", "自动回访",
                                             "第2次自动回电已接听，已告知来电人留言已收到")
            assert not on_callback_list(app, oid)
            clock.at = monday + timedelta(days=1)
            assert callbacks.run_once() == []  # reached once: never again
        finally:
            ws.__exit__(None, None, None)


def test_an_after_hours_callback_never_reported_is_due_again_and_a_service_number_is_refused_once(engine):
    saturday_night = datetime(2026, 12, 5, 21, 0, tzinfo=CN)
    monday = datetime(2026, 12, 7, 9, 0, tzinfo=CN)
    clock = Clock(saturday_night)
    app = make_app(engine, clock, outcome_timeout_s=120)
    with TestClient(app) as c:
        ws, sock = connect(c, app)
        try:
            ids = []
            for phone in ("13800000032", "10086"):
                call_id = after_hours_message(c, saturday_night, phone)
                with app.state.sessionmaker() as db:
                    ids.append(db.scalars(select(WorkOrder.id).where(WorkOrder.call_id == call_id)).one())
            clock.at = monday
            callbacks = app.state.callbacks
            sent = callbacks.run_once()
            assert [s.order_id for s in sent] == [ids[0]]
            received(sock)
            assert history(app, ids[1])[-1][:2] == ("callback_refused", "自动回访")
            clock.at = monday + timedelta(seconds=121)  # its worker died: never reported
            assert callbacks.run_once() == []
            assert history(app, ids[0])[-1] == ("after_hours_callback_failed", "自动回访",
                                                "第1次留言回电未接通（未收到回电结果），30分钟后再次回电")
            assert len(history(app, ids[1])) == 3 and on_callback_list(app, ids[1])  # refused once, left to staff
            clock.at = monday + timedelta(minutes=33)  # 30 min after the failure at 09:02:01
            assert [s.order_id for s in callbacks.run_once()] == [ids[0]]
            assert received(sock).attempt == 2
        finally:
            ws.__exit__(None, None, None)


def test_settings_and_the_spoken_summary():
    s = AutoCallbackSettings(target="sip:0{number}@10.0.0.5:5060")
    assert s.uri_for(" +86 138-0000-0002 ") == "sip:013800000002@10.0.0.5:5060"  # the national form
    assert s.uri_for("12") is None and s.uri_for("") is None
    with pytest.raises(ValueError, match="target"):
        AutoCallbackSettings(enabled=True)
    with pytest.raises(ValueError, match="number"):
        AutoCallbackSettings(target="sip:pbx")
    text = ("办理情况说明。" * 200)[:1400]
    spoken = spoken_summary(text)
    assert len(spoken) <= 1000 and spoken.endswith("。")
    assert spoken_summary("  第一行\n 第二行 ") == "第一行 第二行"
    assert uuid  # noqa: B018
