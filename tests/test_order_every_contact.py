"""Every contact leaves an order (issue 16, part 1), over real calls' events against a real hub process: a call the
knowledge base settled, a case-status self-service call, a caller who hung up in the queue, an operator's call
(wrap-up refused without an order or a reason) and repeat calls (same number within ``repeat_days``: they join the
open order, flagged 重复来电) leave exactly the orders described, with channel, category and links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from agent_console.models import Call, CallEventRecord
from agent_console.work_orders.hub_orders import HubFiling
from hotline.db import make_engine, session_factory, upgrade_engine
from ivr.contract import (
    BridgeUpdate,
    CallAnswered,
    CallEnded,
    CallOffered,
    DigitsReceived,
    KbDecided,
    MenuEntered,
    MessageRecorded,
    MessageTranscribed,
    PromptPlayed,
    QueueLeft,
    SpeechHeard,
)
from tests.ops_support import TOKEN, FakeWorker, Operator, add_users, login_cookie, post_events, queued_call
from tests.work_order_support import client, database, wait_for, wo_hub
from work_orders.calendar import WorkCalendar
from work_orders.models import WorkOrder, WorkOrderContact, WorkOrderHistory
from work_orders.settings import WorkOrderSettings
from work_orders.store import WorkOrderContext

PHONE, OTHER, THIRD = "13812345678", "13987654321", "13700001111"
CASE = "（2026）粤0305民初1234号"  # a demo case, 查询密码 123456
STATUS = ["您查询的案件，", "案由是民间借贷纠纷，目前正在审理中。"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = wo_hub(tmp_path_factory.mktemp("contacts"), datetime.now(UTC), repeat_days="7")
    add_users(h, ("op1", "operator", "sip:op1@127.0.0.1:5099"))
    yield h
    h.stop()


def orders(hub, **where) -> list[WorkOrder]:
    with database(hub) as db:
        q = select(WorkOrder).order_by(WorkOrder.id)
        for k, v in where.items():
            q = q.where(getattr(WorkOrder, k) == v)
        return list(db.scalars(q))


def history(hub, order_id: int) -> list[WorkOrderHistory]:
    with database(hub) as db:
        return list(db.scalars(select(WorkOrderHistory).where(WorkOrderHistory.order_id == order_id)
                               .order_by(WorkOrderHistory.id)))


def start(call_id: str, phone: str, t0: datetime) -> list:
    k = {"call_id": call_id, "worker": "w0"}
    return [CallOffered(**k, ts=t0, caller=f"sip:{phone}@10.0.0.9:5060", callee="12368", source="10.0.0.9:5060"),
            CallAnswered(**k, ts=t0 + timedelta(seconds=0.1)), MenuEntered(**k, ts=t0 + timedelta(seconds=0.2),
                                                                           node="main")]


def test_kb_status_queue_hangup_and_repeat_calls_leave_the_orders_described(hub):
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    k = {"worker": "w0"}
    # 1. the knowledge base answered, the caller hung up content: one closed consult order (即办)
    post_events(hub, [*start("kb1", THIRD, t0), SpeechHeard(call_id="kb1", **k, node="consult", kind="final",
                                                             text="诉讼费怎么交"),
                      KbDecided(call_id="kb1", **k, node="consult", decision="answer", faq_id="fee_pay",
                                query="诉讼费怎么交"),
                      CallEnded(call_id="kb1", **k, cause="answered_by_kb", side="caller")])
    (kb,) = wait_for(lambda: orders(hub, call_id="kb1"), what="the KB order")
    assert (kb.channel, kb.status, kb.settled_at_once, kb.auto_key) == ("hotline", "closed", True, "kb:kb1")
    assert kb.summary == "诉求：诉讼费怎么交\n系统已答复：知识库解答“诉讼费怎么交”"

    # 2. case-status self-service: verified, heard the status, hung up -> a closed query order with the status
    r = httpx.post(f"{hub.url}/internal/cases/verify", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10,
                   json={"number": CASE, "secret": "123456", "caller": OTHER, "call_id": "st1"})
    assert r.status_code == 200 and r.json()["result"] == "ok", r.text
    s = {"call_id": "st1", **k}
    post_events(hub, [*start("st1", OTHER, t0), MenuEntered(**s, node="case_query"),
                      DigitsReceived(**s, node="case_query", digits="2026*440305*1*1234#"),
                      *[PromptPlayed(**s, node="case_status", prompt=f"case_status:{i + 1}:{p}", played_ms=900,
                                     duration_ms=900) for i, p in enumerate(STATUS)],
                      CallEnded(**s, cause="case_status_done", side="ivr")])
    (st,) = wait_for(lambda: orders(hub, call_id="st1"), what="the status order")
    assert (st.category, st.status, st.settled_at_once, st.auto_key) == ("query", "closed", True, "status:st1")
    assert st.case_number == CASE and STATUS[1] in st.content and "即办" in st.tags
    assert [h.action for h in history(hub, st.id)][0] == "settle"
    assert st.summary.splitlines()[1:] == [f"关键信息：案号{CASE}", "系统已答复：已播报案件状态：" + "".join(STATUS)]

    # 3. hung up while waiting for an operator: an order 未接通回拨 with a callback due
    q = {"call_id": "q1", **k}
    post_events(hub, [*queued_call("q1", caller=PHONE, said="我想问一下立案需要什么材料", t0=t0),
                      QueueLeft(**q, ts=t0 + timedelta(seconds=40), node="consult_staff", outcome="hangup"),
                      CallEnded(**q, ts=t0 + timedelta(seconds=41), cause="caller_hangup", side="caller")])
    (missed,) = wait_for(lambda: orders(hub, call_id="q1"), what="the 未接通 order")
    assert (missed.status, missed.settled_at_once, missed.auto_key) == ("received", False, "auto:q1")
    assert missed.callback_due is not None and "未接通" in missed.content and "回电" in missed.tags
    assert missed.citizen_phone == PHONE
    assert missed.summary.startswith("诉求：我想问一下立案需要什么材料")  # the summary for the handler (part 3)

    # 4. the same number again (hangs up in the queue): no new order, it joins the open one as 重复来电
    r2 = {"call_id": "q2", **k}
    post_events(hub, [*queued_call("q2", caller=PHONE, said="还是立案材料的事", t0=t0 + timedelta(minutes=2)),
                      QueueLeft(**r2, ts=t0 + timedelta(minutes=3), node="consult_staff", outcome="hangup"),
                      CallEnded(**r2, ts=t0 + timedelta(minutes=3), cause="caller_hangup", side="caller")])
    wait_for(lambda: orders(hub, id=missed.id)[0].repeat_count == 1, what="the repeat contact")
    (joined,) = orders(hub, id=missed.id)
    assert "重复来电" in joined.tags and orders(hub, call_id="q2") == []
    with database(hub) as db:
        (contact,) = db.scalars(select(WorkOrderContact).where(WorkOrderContact.order_id == missed.id))
        assert (contact.call_id, contact.matched_by) == ("q2", "phone")
    assert [h.action for h in history(hub, missed.id)].count("repeat") == 1
    # and once more after hours, with a message: it joins too, and the transcript that follows goes there
    a = {"call_id": "ah1", **k}
    msg = MessageRecorded(**a, ts=t0 + timedelta(minutes=4), node="after_hours", purpose="after_hours",
                          recording="ah1.wav", duration_s=5.0, transcript_pending=True)
    post_events(hub, [*start("ah1", PHONE, t0 + timedelta(minutes=4)), msg])
    wait_for(lambda: orders(hub, id=missed.id)[0].repeat_count == 2, what="the second repeat contact")
    post_events(hub, [MessageTranscribed(**a, ts=t0 + timedelta(minutes=5), node="after_hours",
                                         message_event_id=msg.event_id, purpose="after_hours", recording="ah1.wav",
                                         text="立案材料的事请回电")])
    wait_for(lambda: "（录音 ah1.wav）：立案材料的事请回电" in orders(hub, id=missed.id)[0].content, what="transcript")
    # the KB and status calls stayed single orders; nothing else was filed
    assert sorted(o.call_id for o in orders(hub)) == ["kb1", "q1", "st1"]
    # the order page shows the joined calls
    sup = client(hub, "op1")
    detail = sup.get(f"/api/work_orders/{missed.id}").json()
    assert detail["repeat_count"] == 2 and [c["call_id"] for c in detail["contacts"]] == ["q2", "ah1"]


def test_wrap_up_needs_an_order_or_a_reason_and_a_repeat_caller_joins_the_open_order(hub):
    worker = FakeWorker(hub, "w0")
    op = Operator(hub, login_cookie(hub, "op1"))
    api = client(hub, "op1")
    try:
        op.send({"type": "presence", "state": "ready"})
        op.until("presence", operator__state="ready")

        def talk(call_id: str, phone: str, said: str) -> None:
            post_events(hub, queued_call(call_id, caller=phone, said=said))
            offer = op.until("offer", call_id=call_id)
            op.send({"type": "accept", "offer_id": offer["offer_id"]})
            bridge = worker.next("bridge", call_id=call_id)
            k = {"call_id": call_id, "worker": "w0"}
            post_events(hub, [BridgeUpdate(**k, offer_id=bridge.offer_id, target=bridge.target, state="connected"),
                              CallEnded(**k, cause="caller_hangup", side="caller")])
            op.until("presence", operator__state="wrap_up", operator__call_id=call_id)

        # a new caller: wrap-up is refused until an order is filed
        talk("op1c", "13600002222", "我要投诉执行法官不作为")
        op.send({"type": "wrap_up_done", "ref": "w1"})
        assert "请先提交工单" in op.until("error", ref="w1")["message"]
        op.send({"type": "presence", "state": "ready", "ref": "w2"})  # the same through the presence buttons
        assert "请先提交工单" in op.until("error", ref="w2")["message"]
        r = api.post("/api/work_orders", json={"call_id": "op1c", "category": "complaint", "content": "投诉执行法官"})
        assert r.status_code == 201, r.text
        op.send({"type": "wrap_up_done"})
        op.until("presence", operator__state="ready")

        # a misdial: no order, the reason is kept on the call's record
        talk("op2c", "13600003333", "喂")
        op.send({"type": "wrap_up_done", "reason": "misdial"})
        op.until("presence", operator__state="ready")
        with database(hub) as db:
            reasons = wait_for(lambda: list(db.scalars(select(CallEventRecord.payload).where(
                CallEventRecord.call_id == "op2c", CallEventRecord.type == "wrap_up_reason"))), what="reason")
        assert reasons[0]["reason"] == "misdial" and orders(hub, call_id="op2c") == []

        # the caller who hung up in the queue calls again and reaches an operator: the draft names the open
        # order; joining it lets wrap-up end, and no second order is filed
        (missed,) = orders(hub, call_id="q1")
        talk("op3c", PHONE, "我之前打过电话，立案材料还没人回复")
        draft = api.get("/api/calls/op3c/work_order_draft").json()
        assert draft["order"] is None and draft["repeat_of"]["id"] == missed.id
        assert draft["repeat_of"]["matched_by_name"] == "同一号码"
        j = api.post(f"/api/work_orders/{missed.id}/contacts", json={"call_id": "op3c"})
        assert j.status_code == 200 and j.json()["repeat_count"] == 3, j.text
        assert api.get("/api/calls/op3c/work_order_draft").json()["order"]["id"] == missed.id
        op.send({"type": "wrap_up_done"})
        op.until("presence", operator__state="ready")
        assert orders(hub, call_id="op3c") == []
    finally:
        op.close()
        worker.close()


def test_a_restarted_hub_files_the_status_order_it_missed(tmp_path):
    """The hub stopped between storing a status call's end and filing its order: the start-up recheck files it."""
    engine = make_engine(f"sqlite:///{tmp_path / 'hotline.db'}")
    upgrade_engine(engine)
    sessions = session_factory(engine)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    ended = CallEnded(call_id="rs1", worker="w0", ts=t0 + timedelta(seconds=30), cause="case_status_done",
                      side="ivr")
    with sessions() as db:
        db.add(Call(call_id="rs1", caller=f"sip:{OTHER}@10.0.0.9", started_at=t0, status="ended",
                    prompts=["welcome", f"case_status:1:{STATUS[1]}"]))
        db.add(CallEventRecord(event_id=ended.event_id, call_id="rs1", worker="w0", type="call_ended", ts=ended.ts,
                               payload=ended.model_dump(mode="json")))
        db.commit()
    jobs: list = []
    ctx = WorkOrderContext(WorkCalendar(), WorkOrderSettings(suggest_classification=False))
    HubFiling(ctx, sessions, category_of=lambda _: None, submit=jobs.append).recheck()
    assert len(jobs) == 1  # on the ordered writer, after the call's message orders
    with sessions() as db:
        jobs[0](db)
        db.commit()
        (order,) = db.scalars(select(WorkOrder)).all()
        assert (order.auto_key, order.status, order.category) == ("status:rs1", "closed", "query")
        assert STATUS[1] in order.content
    engine.dispose()
