"""The operator console's realtime side against a real hub process: the operator websocket protocol
(seq, resume, snapshot), routing through it, the worker command socket, refusals and masking.

Worker events are real event batches POSTed to /internal/events with the worker token; the worker's
command socket is a websockets client (``FakeWorker``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agent_console.models import Call, CallEventRecord
from hotline.db import make_engine, session_factory
from ivr.contract import BridgeUpdate, CallEnded, MessageRecorded, QueueLeft, SpeechHeard
from tests.ops_support import (
    FakeWorker,
    Operator,
    add_users,
    login_cookie,
    ops_hub,
    post_events,
    queued_call,
    ws_url,
)
from work_orders.models import WorkOrder

OFFER_TIMEOUT_S = 1.5


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = ops_hub(tmp_path_factory.mktemp("ops"), offer_timeout_s=OFFER_TIMEOUT_S)
    add_users(h, *[(f"op{i}", "operator", f"sip:op{i}@127.0.0.1:5099") for i in range(1, 9)],
              ("nosip", "operator", None), ("sup", "supervisor", None), ("adm", "admin", None),
              ("hd", "handler", None))
    yield h
    h.stop()


@pytest.fixture(scope="module")
def worker(hub):
    w = FakeWorker(hub, "w0")
    yield w
    w.close()


def db_session(hub):
    engine = make_engine(f"sqlite:///{hub.home / 'hotline.db'}")
    return engine, session_factory(engine)()


def ready(hub, name: str) -> Operator:
    op = Operator(hub, login_cookie(hub, name))
    op.until("snapshot")
    op.send({"type": "presence", "state": "ready"})
    op.until("presence", operator__state="ready")
    return op


def finish(hub, op: Operator, call_id: str) -> None:
    """End the call and the operator's wrap-up, leaving the operator away (out of later tests' way)."""
    post_events(hub, [CallEnded(call_id=call_id, worker="w0", cause="caller_hangup", side="caller")])
    op.send({"type": "presence", "state": "away"})
    time.sleep(0.1)
    op.close()


# ---------------------------------------------------------------------------------------------- security
def test_websockets_refuse_anonymous_and_wrong_roles(hub):
    with pytest.raises(InvalidStatus) as e:
        Operator(hub, "not-a-session")
    assert e.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as e:
        Operator(hub, login_cookie(hub, "hd"))  # handlers do not take calls
    assert e.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as e:  # another site's page using the operator's cookie
        Operator(hub, login_cookie(hub, "op1"), origin="http://evil.example")
    assert e.value.response.status_code == 403
    for token in ("", "wrong-token-wrong-token"):
        with pytest.raises(InvalidStatus) as e:
            FakeWorker(hub, "w9", token=token)
        assert e.value.response.status_code == 401
    # a login cookie is no worker token, and the worker token is no login
    from websockets.sync.client import connect
    with pytest.raises(InvalidStatus) as e:
        connect(ws_url(hub, "/internal/worker/ws?worker=w9"),
                additional_headers={"Cookie": f"hotline_session={login_cookie(hub, 'adm')}"}, legacy=True)
    assert e.value.response.status_code == 401


def test_new_http_endpoints_refuse_anonymous_and_wrong_roles(hub):
    anon = httpx.Client(base_url=hub.url)
    handler = httpx.Client(base_url=hub.url, cookies={"hotline_session": login_cookie(hub, "hd")})
    op = httpx.Client(base_url=hub.url, cookies={"hotline_session": login_cookie(hub, "op1")})
    body = {"category": "consult", "content": "x"}
    for method, url in [("GET", "/api/wallboard"), ("GET", "/api/work_orders"), ("GET", "/api/work_orders/1"),
                        ("POST", "/api/work_orders"), ("GET", "/api/calls/x/work_order_draft")]:
        assert anon.request(method, url, json=body).status_code == 401, url
        assert handler.request(method, url, json=body).status_code == 403, url
    assert op.get("/api/wallboard").status_code == 403
    assert op.get("/wallboard").status_code == 403
    assert anon.get("/wallboard").status_code == 303
    sup = httpx.Client(base_url=hub.url, cookies={"hotline_session": login_cookie(hub, "sup")})
    assert sup.get("/api/wallboard").status_code == 200 and sup.get("/wallboard").status_code == 200
    r = httpx.post(f"{hub.url}/internal/events", json={"v": 1, "events": []},
                   headers={"Authorization": "Bearer nope-nope-nope-nope"})
    assert r.status_code == 401


# ---------------------------------------------------------------------------------------------- the flow
def test_offer_accept_bridge_talk_wrap_up_and_work_order(hub, worker):
    op = ready(hub, "op1")
    sup = Operator(hub, login_cookie(hub, "sup"))
    sup.until("snapshot")
    post_events(hub, queued_call("flow1", said="我的电话是13812345678，想问立案要带什么材料"))
    status = worker.next("queue_status", call_id="flow1")
    assert status.position == 0
    offer = op.until("offer", call_id="flow1")
    assert offer["caller"] == "138****5678" and offer["menu_path"] == ["main", "consult", "consult_staff"]
    assert offer["category"] == "consult"
    assert [x["text"] for x in offer["transcript"]] == ["我的电话是138****5678，想问立案要带什么材料"]
    assert datetime.fromisoformat(offer["expires_at"]) > datetime.now(UTC)

    op.send({"type": "accept", "offer_id": offer["offer_id"], "ref": "a1"})
    bridge = worker.next("bridge", call_id="flow1")
    assert (bridge.offer_id, bridge.target) == (offer["offer_id"], "sip:op1@127.0.0.1:5099")
    op.until("presence", operator__state="busy", operator__call_id="flow1")
    op.until("bridge", bridge__state="requested")

    k = {"call_id": "flow1", "worker": "w0"}
    post_events(hub, [BridgeUpdate(**k, offer_id=offer["offer_id"], target=bridge.target, state="dialing"),
                      BridgeUpdate(**k, offer_id=offer["offer_id"], target=bridge.target, state="connected"),
                      QueueLeft(**k, node="consult_staff", outcome="bridged")])
    op.until("bridge", bridge__state="connected")
    op.until("call_view", state="talking")
    post_events(hub, [SpeechHeard(**k, node="bridge", speaker="operator", kind="partial", text="您好"),
                      SpeechHeard(**k, node="bridge", speaker="operator", kind="final", text="您好，这里是12368"),
                      SpeechHeard(**k, node="bridge", speaker="caller", kind="final", text="诉讼费怎么交")])
    line = op.until("call_view", line__speaker="operator", line__final=True)["line"]
    assert line["text"] == "您好，这里是12368"
    partial = [e for e in op.events if e["type"] == "call_view" and e.get("line")
               and e["line"]["speaker"] == "operator" and not e["line"]["final"]]
    assert partial and partial[0]["line"]["line_id"] == line["line_id"]  # the final replaces the partial
    sugg = op.until("suggestions")
    assert sugg["query"] == "诉讼费怎么交" and 1 <= len(sugg["items"]) <= 3
    top = sugg["items"][0]
    assert top["score"] > 0 and top["question"] and top["answer"]
    op.send({"type": "play_suggestion", "call_id": "flow1", "faq_id": top["faq_id"]})
    assert op.until("note", note__kind="suggestion")["note"]["faq_id"] == top["faq_id"]
    op.send({"type": "note", "call_id": "flow1", "text": "来电人要求书面材料清单"})
    op.until("note", note__kind="note")

    post_events(hub, [CallEnded(**k, cause="caller_hangup", side="caller")])
    op.until("presence", operator__state="wrap_up")
    cookie = login_cookie(hub, "op1")
    api = httpx.Client(base_url=hub.url, cookies={"hotline_session": cookie})
    draft = api.get("/api/calls/flow1/work_order_draft").json()
    assert draft["category"] == "consult" and draft["category_source"] == "menu"
    # pre-filled with the suggested classification within the menu's category (issue 16)
    assert draft["suggestion"]["category"] == "consult" and draft["subcategory"] == "诉讼费/缴费", draft
    assert draft["citizen_phone"] == "138****5678" and "13812345678" not in str(draft)
    assert [x["speaker"] for x in draft["transcript"]] == ["caller", "operator", "caller"]
    r = api.post("/api/work_orders", json={"call_id": "flow1", "category": draft["category"], "subcategory": "立案",
                                           "tags": ["材料"], "content": draft["content"],
                                           "citizen_phone": draft["citizen_phone"]})
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["number"].startswith("12368-") and order["citizen_phone"] == "138****5678"
    op.send({"type": "wrap_up_done"})
    op.until("presence", operator__state="ready")

    engine, db = db_session(hub)
    try:
        wo = db.scalars(select(WorkOrder).where(WorkOrder.call_id == "flow1")).one()
        assert wo.citizen_phone == "13812345678"  # stored in clear, linked to the call
        assert len(wo.transcript) == 3 and len(wo.notes) == 2 and wo.created_by == "op1"
        assert db.get(Call, "flow1").status == "ended"
        kinds = set(db.scalars(select(CallEventRecord.type).where(CallEventRecord.call_id == "flow1")))
        assert {"offer_accepted", "operator_note", "bridge_update", "queue_joined"} <= kinds
    finally:
        db.close()
        engine.dispose()

    # the supervisor followed the whole call; the operator's frames never held the number in clear
    sup.until("call_view", call_id="flow1", state="ended")
    assert "13812345678" not in "".join(op.raw) and "13812345678" not in "".join(sup.raw)
    adm = Operator(hub, login_cookie(hub, "adm"), resume_from=0)
    snap = adm.until("snapshot")
    assert snap["me"]["state"] == "away"
    op.send({"type": "presence", "state": "away"})
    op.close(), sup.close(), adm.close()


def test_a_final_arriving_after_the_hang_up_replaces_its_partial(hub):
    # a bridged leg's last words are decoded after the caller hung up: the console shows them once, final
    sup = Operator(hub, login_cookie(hub, "sup"))
    sup.until("snapshot")
    k = {"call_id": "late1", "worker": "w0"}
    post_events(hub, [*queued_call("late1")[:2],
                      SpeechHeard(**k, node="bridge", speaker="caller", kind="partial", text="我要立案系要"),
                      CallEnded(**k, cause="caller_hangup", side="caller")])
    partial = sup.until("call_view", call_id="late1", line__final=False)["line"]
    sup.until("call_view", call_id="late1", state="ended")
    post_events(hub, [SpeechHeard(**k, node="bridge", speaker="caller", kind="final", text="我要立案需要带什么材料")])
    final = sup.until("call_view", call_id="late1", line__final=True)["line"]
    assert final["line_id"] == partial["line_id"] and final["text"] == "我要立案需要带什么材料"
    sup.close()


def test_seq_increases_and_resume_replays_exactly_the_missed_events(hub, worker):
    """Two connections of the same operator: one stays, one drops mid-call and resumes. Same events, once."""
    stay = ready(hub, "op2")
    post_events(hub, queued_call("res1"))
    offer = stay.until("offer", call_id="res1")
    stay.send({"type": "accept", "offer_id": offer["offer_id"]})
    bridge = worker.next("bridge", call_id="res1")
    k = {"call_id": "res1", "worker": "w0"}
    post_events(hub, [BridgeUpdate(**k, offer_id=bridge.offer_id, target=bridge.target, state="connected")])
    stay.until("call_view", call_id="res1", state="talking")

    drop = Operator(hub, login_cookie(hub, "op2"))
    drop.until("snapshot")
    post_events(hub, [SpeechHeard(**k, node="bridge", speaker="caller", kind="final", text=f"第{i}句")
                      for i in range(3)])
    drop.until("call_view", line__text="第2句")
    last = drop.seqs()[-1]
    drop.close()
    post_events(hub, [SpeechHeard(**k, node="bridge", speaker=("caller", "operator")[i % 2], kind="final",
                                  text=f"第{i}句") for i in range(3, 9)])
    stay.until("call_view", line__text="第8句")
    back = Operator(hub, login_cookie(hub, "op2"), resume_from=last, epoch=drop.welcome["epoch"])
    back.until("call_view", line__text="第8句")
    extra = back.drain(0.3)
    assert not [e for e in back.events if e["type"] == "snapshot"]
    seen = drop.seqs() + back.seqs()
    assert seen == sorted(seen) and len(seen) == len(set(seen))  # increasing, none twice
    stay.drain(0.2)
    want = [s for s in stay.seqs() if s >= drop.seqs()[0]]
    assert [s for s in seen if s <= stay.seqs()[-1]] == want  # none missing
    lines = [e["line"]["text"] for e in drop.events + back.events if e["type"] == "call_view" and e.get("line")]
    assert lines == [f"第{i}句" for i in range(9)]
    assert all(e["seq"] > last for e in back.events if e.get("seq")) and extra is not None

    # an unknown epoch (the hub restarted) or a seq from the future gets a snapshot with every line
    again = Operator(hub, login_cookie(hub, "op2"), resume_from=last, epoch="another-hub")
    snap = again.until("snapshot")
    (call,) = [c for c in snap["calls"] if c["call_id"] == "res1"]
    assert [x["text"] for x in call["lines"]][-9:] == [f"第{i}句" for i in range(9)]
    assert snap["me"]["state"] == "busy" and snap["me"]["call_id"] == "res1"
    again.close(), back.close()
    finish(hub, stay, "res1")


def test_offer_timeout_goes_to_the_next_operator_and_queue_positions_reach_the_worker(hub, worker):
    first = ready(hub, "op3")  # longest idle
    time.sleep(0.05)
    second = ready(hub, "op4")
    post_events(hub, queued_call("to1"))
    offer = first.until("offer", call_id="to1")
    post_events(hub, queued_call("to2"))
    offer2 = second.until("offer", call_id="to2")
    assert worker.next("queue_status", call_id="to2").position == 1
    second.send({"type": "decline", "offer_id": offer2["offer_id"]})
    second.until("offer_revoked", offer_id=offer2["offer_id"], reason="declined")
    revoked = first.until("offer_revoked", offer_id=offer["offer_id"], timeout=OFFER_TIMEOUT_S + 3)
    assert revoked["reason"] == "timeout"
    first.until("presence", operator__state="away", operator__reason="missed_offer")
    second.until("offer", call_id="to1")  # the next operator (op4 declined to2, not to1)
    second.send({"type": "presence", "state": "away"})
    post_events(hub, [QueueLeft(call_id="to1", worker="w0", node="consult_staff", outcome="hangup"),
                      CallEnded(call_id="to1", worker="w0", cause="caller_hangup", side="caller")])
    worker.next("queue_status", call_id="to2", position=0)  # to1 left: to2 moves up
    post_events(hub, [CallEnded(call_id="to2", worker="w0", cause="caller_hangup", side="caller")])
    first.close(), second.close()


def test_bridge_failed_puts_the_call_back_in_the_queue_and_the_operator_away(hub, worker):
    op = ready(hub, "op5")
    post_events(hub, queued_call("bf1"))
    offer = op.until("offer", call_id="bf1")
    op.send({"type": "accept", "offer_id": offer["offer_id"]})
    bridge = worker.next("bridge", call_id="bf1")
    post_events(hub, [BridgeUpdate(call_id="bf1", worker="w0", offer_id=bridge.offer_id, target=bridge.target,
                                   state="failed", status_code=480, reason="no_answer")])
    op.until("presence", operator__state="away", operator__reason="bridge_failed")
    q = op.has_or_until("queue")
    assert [(e["call_id"], e["position"], e["state"]) for e in q["entries"]] == [("bf1", 0, "waiting")]
    # an operator without a SIP phone is told so, in Chinese
    nosip = ready(hub, "nosip")
    offer = nosip.until("offer", call_id="bf1")
    nosip.send({"type": "accept", "offer_id": offer["offer_id"], "ref": "x1"})
    err = nosip.until("error", ref="x1")
    assert "SIP" in err["message"] and err["seq"] is None
    nosip.send({"type": "decline", "offer_id": offer["offer_id"]})
    nosip.send({"type": "presence", "state": "away"})
    nosip.send({"type": "nonsense"})
    assert nosip.until("error")["code"] == "bad_message"
    post_events(hub, [CallEnded(call_id="bf1", worker="w0", cause="caller_hangup", side="caller")])
    op.close(), nosip.close()


def test_callback_and_after_hours_messages_become_work_orders_once(hub):
    friday = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)  # Saturday 04:00 in Shanghai
    post_events(hub, queued_call("cb1", caller="13900001111", t0=friday - timedelta(minutes=1)))
    ev = QueueLeft(call_id="cb1", worker="w0", node="consult_staff", outcome="callback", ts=friday)
    post_events(hub, [ev])
    post_events(hub, [ev])  # a resent spool: a duplicate, no second order
    msg = MessageRecorded(call_id="ah1", worker="w0", node="after_hours", purpose="after_hours",
                          recording="ah1.wav", duration_s=12.5, text="请回电，案号（2023）粤0305民初1234号",
                          ts=datetime(2026, 11, 27, 11, 0, tzinfo=UTC))  # Friday 19:00 in Shanghai
    post_events(hub, [msg, CallEnded(call_id="ah1", worker="w0", cause="caller_hangup", side="caller")])
    adm = httpx.Client(base_url=hub.url, cookies={"hotline_session": login_cookie(hub, "adm")})
    (cb,) = adm.get("/api/work_orders", params={"call_id": "cb1"}).json()
    assert cb["citizen_phone"] == "13900001111" and cb["callback_due"] == "2026-11-30"  # Saturday -> Monday
    assert cb["created_by"] == "hub" and cb["category"] == "consult" and cb["number"].startswith("12368-20261128-")
    (ah,) = adm.get("/api/work_orders", params={"call_id": "ah1"}).json()
    assert ah["callback_due"] == "2026-11-30" and ah["case_number"] == "（2023）粤0305民初1234号"
    assert "ah1.wav" in ah["content"]
    early = MessageRecorded(call_id="ah2", worker="w0", node="after_hours", purpose="after_hours",
                            recording="ah2.wav", duration_s=5.0, text="请回电",
                            ts=datetime(2026, 11, 29, 23, 0, tzinfo=UTC))  # Monday 07:00 in Shanghai
    post_events(hub, [early, CallEnded(call_id="ah2", worker="w0", cause="caller_hangup", side="caller")])
    (ah2,) = adm.get("/api/work_orders", params={"call_id": "ah2"}).json()
    assert ah2["callback_due"] == "2026-11-30"  # before opening on a working day: called back that day
    op = httpx.Client(base_url=hub.url, cookies={"hotline_session": login_cookie(hub, "op6")})
    (masked,) = op.get("/api/work_orders", params={"call_id": "ah1"}).json()
    assert "1234号" not in str(masked) and masked["case_number"] == "（2023）粤0305民初****号"


def test_wallboard(hub, worker):
    post_events(hub, queued_call("wb1"))
    sup = httpx.Client(base_url=hub.url, cookies={"hotline_session": login_cookie(hub, "sup")})
    wb = sup.get("/api/wallboard").json()
    assert wb["calls_in_queue"] >= 1 and wb["longest_wait_s"] >= 10
    assert {"ready", "busy", "wrap_up", "away"} == set(wb["operators_by_state"])
    assert wb["answered_today"] >= 1 and "w0" in wb["workers_connected"]
    post_events(hub, [QueueLeft(call_id="wb1", worker="w0", node="consult_staff", outcome="hangup"),
                      CallEnded(call_id="wb1", worker="w0", cause="caller_hangup", side="caller")])
    assert sup.get("/api/wallboard").json()["abandoned_today"] >= 1
    # events a worker's hub refused (its dead-letter file in the spool): an alert on the wallboard
    assert sup.get("/api/wallboard").json()["dead_letters"] == {}
    spool = hub.home / "spool"
    spool.mkdir(exist_ok=True)
    (spool / "w3.dead.jsonl").write_text('{"status": 422}\n{"status": 422}\n')
    assert sup.get("/api/wallboard").json()["dead_letters"] == {"w3": 2}
    page = sup.get("/wallboard").text
    assert 'id="dead_letters"' in page and "死信" in page and "hotline doctor" in page


def test_worker_socket_reconnect_and_send_failure(hub):
    """A second socket of the same worker replaces the first; QueueStatus follows the live one."""
    a = FakeWorker(hub, "w5")
    b = FakeWorker(hub, "w5")
    with pytest.raises(ConnectionClosed):
        for _ in range(50):
            a.ws.recv(timeout=0.1)
    post_events(hub, queued_call("wk1", worker="w5"))
    assert b.next("queue_status", call_id="wk1").position >= 0
    b.close()
    # a call on a worker with no socket: accepting it fails cleanly and the call waits again
    time.sleep(0.2)
    op = ready(hub, "op7")
    offer = op.until("offer", call_id="wk1")
    op.send({"type": "accept", "offer_id": offer["offer_id"]})
    assert op.until("error")["code"] == "worker_not_connected"
    op.until("presence", operator__state="away")
    post_events(hub, [CallEnded(call_id="wk1", worker="w5", cause="caller_hangup", side="caller")])
    op.close()
