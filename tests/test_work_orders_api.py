"""The work-order loop through the API of a real hub process: a call's handoff becomes an order, dispatched,
answered by the handler's team, called back by an operator (2 → reopened with a supervisor alert, 5 → closed);
refused moves and bad input change nothing; roles; masking; the orders the hub files itself (KB-settled calls,
messages about a case); intake from other systems and the public form; attachments."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, timedelta

import httpx
import pytest
from sqlalchemy import select

from ivr.contract import CallEnded, CallOffered, KbDecided, MessageRecorded, SpeechHeard
from tests.ops_support import post_events, queued_call
from tests.work_order_support import (
    INTAKE_TOKEN,
    at,
    client,
    database,
    notices,
    snapshot,
    staff,
    wait_for,
    wo_hub,
)
from work_orders.models import WorkOrder, WorkOrderAttachment, WorkOrderHistory

PHONE = "13812345678"
ID_NUMBER = "44030519800101123X"
NOW = at(2026, 11, 30, 10)  # a Monday


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = wo_hub(tmp_path_factory.mktemp("wo-api"), NOW, web_form_per_hour="3", attachment_max_mb="0.05")
    yield h
    h.stop()


@pytest.fixture(scope="module")
def users(hub):
    return staff(hub, {"民一庭": ["hd1"], "执行局": ["hd2"]})


def post(c: httpx.Client, order_id: int, action: str, body: dict | None = None) -> httpx.Response:
    return c.post(f"/api/work_orders/{order_id}/{action}", json=body or {})


def ok(r: httpx.Response, code: int = 200) -> dict:
    assert r.status_code == code, r.text
    return r.json()


# ---------------------------------------------------------------------------------------------- the loop
def test_call_to_order_dispatch_answer_and_callback(hub, users):
    op, sup, hd1 = users["op"], users["sup"], users["hd1"]
    post_events(hub, queued_call("life1", caller=PHONE, said="我想联系王明法官，案子一直没有消息"))
    post_events(hub, [CallEnded(call_id="life1", worker="w0", cause="caller_hangup", side="caller")])
    draft = ok(op.get("/api/calls/life1/work_order_draft"))
    order = ok(op.post("/api/work_orders", json={"call_id": "life1", "category": "contact_judge",
                                                 "content": draft["content"], "citizen_phone": draft["citizen_phone"],
                                                 "citizen_name": "张伟", "citizen_id_number": ID_NUMBER}), 201)
    oid = order["id"]
    assert order["status"] == "received" and order["number"].startswith("12368-20261130-")
    assert order["citizen_phone"] == "138****5678" and order["citizen_name"] == "张*"  # operators see it masked
    assert order["citizen_id_number"] == "4403************3X"
    assert order["dispatch_due"] == "2026-11-30T09:30:00+00:00"  # 当天转办: 17:30 Beijing the same day

    # the handler does not see it yet and may not dispatch (staff do: operators and supervisors)
    assert hd1.get(f"/api/work_orders/{oid}").status_code == 403
    assert post(hd1, oid, "dispatch", {"assignee": "民一庭"}).status_code == 403
    d = ok(post(sup, oid, "dispatch", {"assignee": "民一庭"}))
    assert d["status"] == "dispatched" and d["feedback_due"] == "2026-12-02T09:30:00+00:00"  # 2 working days
    assert d["change"]["note"] == "转办至民一庭，2个工作日内反馈"
    inbox = ok(hd1.get("/api/inbox"))
    assert inbox["team"] == "民一庭" and [o["id"] for o in inbox["orders"]] == [oid]
    assert [n["kind"] for n in inbox["notices"]] == ["dispatch"]  # the team is told
    assert users["hd2"].get(f"/api/work_orders/{oid}").status_code == 403  # another team
    assert post(users["hd2"], oid, "accept").status_code == 403

    ok(post(hd1, oid, "accept"))
    a = ok(post(hd1, oid, "answer", {"feedback": "已转告王明法官，法官助理将于明日回电"}))
    assert a["status"] == "answered" and a["feedback_late"] is False
    # an operator calls back: rating 2 reopens and alerts the supervisors
    ok(post(op, oid, "start_callback"))
    r = ok(post(op, oid, "rate", {"rating": 2, "note": "仍未联系上法官"}))
    assert r["status"] == "reopened" and r["rating"] == 2 and r["reopen_count"] == 1
    alerts = ok(sup.get("/api/work_orders/supervision"))
    assert any(n["order_id"] == oid and n["kind"] == "rate" and "不满意" in n["message"] for n in alerts["alerts"])
    assert [o["id"] for o in alerts["reopened"]] == [oid]
    # again: dispatched, answered, rated 5 -> closed
    ok(post(sup, oid, "dispatch", {"assignee": "民一庭"}))
    ok(post(hd1, oid, "answer", {"feedback": "王明法官已于今日与当事人通话"}))
    ok(post(op, oid, "start_callback"))
    done = ok(post(op, oid, "rate", {"rating": 5}))
    assert done["status"] == "closed" and done["closed_at"] and done["rating"] == 5
    # the scheduler may add its 待回访 line (callback_due) after an answer, depending on when its pass runs
    actions = [h["action"] for h in done["history"] if h["action"] != "callback_due"]
    assert actions == ["create", "dispatch", "accept", "answer", "start_callback", "rate", "dispatch", "answer",
                       "start_callback", "rate"]
    assert all(h["actor"] for h in done["history"]) and done["history"][1]["actor"] == "sup"
    assert done["callback_attempts"] == 2
    # admins see personal data in clear, everyone else masked, also in the history
    clear = ok(users["adm"].get(f"/api/work_orders/{oid}"))
    assert clear["citizen_phone"] == PHONE and clear["citizen_id_number"] == ID_NUMBER
    assert PHONE not in op.get(f"/api/work_orders/{oid}").text


def test_an_unreached_callback_waits_for_its_retry_time(hub, users):
    op, sup = users["op"], users["sup"]
    o = ok(op.post("/api/work_orders", json={"category": "query", "content": "查询开庭时间"}), 201)
    ok(post(sup, o["id"], "dispatch", {"assignee": "民一庭"}))
    a = ok(post(users["hd1"], o["id"], "answer", {"feedback": "开庭时间为12月8日上午9时"}))
    assert a["next_callback_at"] == NOW.astimezone(UTC).isoformat()  # due from the answer on
    ok(post(op, o["id"], "start_callback"))
    f = ok(post(op, o["id"], "callback_failed", {"reason": "无人接听"}))
    retry = (NOW + timedelta(minutes=30)).astimezone(UTC).isoformat()
    assert f["status"] == "callback" and f["next_callback_at"] == retry
    assert f["change"]["note"] == "第1次回访未成功（无人接听），30分钟后再次回访"
    again = ok(post(op, o["id"], "start_callback"))
    assert again["callback_attempts"] == 2 and again["next_callback_at"] is None
    assert ok(post(op, o["id"], "rate", {"rating": 4}))["status"] == "closed"


def test_settled_at_once_by_the_operator_is_closed_and_counted(hub, users):
    o = ok(users["op"].post("/api/work_orders", json={"category": "consult", "content": "问立案材料，已当场解答",
                                                      "settled_at_once": True, "channel": "hotline"}), 201)
    assert o["status"] == "closed" and o["settled_at_once"] is True and o["closed_at"]
    full = ok(users["op"].get(f"/api/work_orders/{o['id']}"))
    assert [h["action"] for h in full["history"]] == ["settle"]


def test_words_recognized_after_the_order_was_filed_still_reach_it(hub, users):
    """The last words of a bridged call may be recognized after the operator filed the order at wrap-up."""
    post_events(hub, queued_call("late1", caller=PHONE, said="我想问诉讼费"))
    post_events(hub, [CallEnded(call_id="late1", worker="w0", cause="caller_hangup", side="caller")])
    o = ok(users["op"].post("/api/work_orders", json={"call_id": "late1", "category": "consult",
                                                      "content": "问诉讼费"}), 201)
    post_events(hub, [SpeechHeard(call_id="late1", worker="w0", node="bridge", speaker="caller", kind="final",
                                  text="那我明天去法院交"),
                      SpeechHeard(call_id="late1", worker="w0", node="bridge", speaker="caller", kind="partial",
                                  text="谢谢")])

    def transcript() -> list[str]:
        with database(hub) as db:
            return [x["text"] for x in db.get(WorkOrder, o["id"]).transcript]
    assert wait_for(lambda: transcript()[-1:] == ["那我明天去法院交"], what="the late line on the order")
    assert transcript() == ["我想问诉讼费", "那我明天去法院交"]  # once, in order; partials are not kept


# ---------------------------------------------------------------------------------------------- refusals
def test_refused_moves_say_why_and_change_nothing(hub, users):
    sup, hd1 = users["sup"], users["hd1"]
    o = ok(users["op"].post("/api/work_orders", json={"category": "urge", "content": "催一下执行款"}), 201)
    before = snapshot(hub, o["id"])
    for who, action, body, reason in [
        (hd1, "answer", {"feedback": "x"}, None),  # 403: not their team's order (not dispatched yet)
        (sup, "answer", {"feedback": "x"}, "工单当前状态为“已受理”，不能反馈"),
        (sup, "start_callback", {}, "不能回访"),
        (sup, "approve_extension", {}, "不能批准延期"),
        (sup, "reopen", {"reason": "x"}, "不能重新办理"),
    ]:
        r = post(who, o["id"], action, body)
        if reason is None:
            assert r.status_code == 403, r.text
        else:
            assert r.status_code == 409 and reason in r.json()["detail"], r.text
    ok(post(sup, o["id"], "dispatch", {"assignee": "执行局"}))
    mid = snapshot(hub, o["id"])
    r = post(sup, o["id"], "approve_extension")
    assert r.status_code == 409 and r.json()["detail"] == "没有待审批的延期申请"
    r = post(users["hd2"], o["id"], "request_extension", {"workdays": 11, "reason": "等待评估"})
    assert r.status_code == 409 and "1至10个工作日" in r.json()["detail"]
    assert snapshot(hub, o["id"]) == mid and before["orders"] != mid["orders"]
    # the extension loop
    ok(post(users["hd2"], o["id"], "request_extension", {"workdays": 2, "reason": "等待评估报告"}))
    assert post(users["hd2"], o["id"], "request_extension", {"workdays": 1, "reason": "再延"}).status_code == 409
    e = ok(post(sup, o["id"], "approve_extension"))
    assert e["extension_requested"] is None and e["feedback_due"] == "2026-12-07T09:30:00+00:00"  # 3 + 2 days
    r = ok(post(users["hd2"], o["id"], "return", {"reason": "执行款问题属于执行局？已转至财务"}))
    assert r["status"] == "received" and r["assignee"] is None


def test_bad_input_gets_chinese_field_errors_and_changes_nothing(hub, users):
    op, sup = users["op"], users["sup"]
    before = snapshot(hub)
    cases = [
        ({"category": "parking", "content": "x"}, "未知的工单类别：parking"),
        ({"category": "consult"}, "诉求内容：必须填写"),
        ({"category": "consult", "content": ""}, "诉求内容：不能为空"),
        ({"category": "consult", "content": "x" * 5001}, "诉求内容：不能超过5000个字"),
        ({"category": "consult", "content": "x", "colour": "red"}, "colour：不支持的字段"),
        ({"category": "consult", "content": "x", "subcategory": "停车"}, "“咨询”下没有子类“停车”"),
        ({"category": "consult", "content": "x", "tags": ["材料", "火星"]}, "未知的标签：火星"),
        ({"category": "consult", "content": "x", "channel": "fax"}, "渠道：取值无效"),
        ({"category": "consult", "content": "x", "citizen_phone": "138****5678"}, "电话号码或案号不完整"),
    ]
    for body, message in cases:
        r = op.post("/api/work_orders", json=body)
        assert r.status_code == 422 and message in r.json()["detail"], (body, r.text)
    r = op.post("/api/work_orders", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "不是有效的JSON" in r.json()["detail"]
    o = WorkOrder  # an existing order for the moves
    with database(hub) as db:
        oid = db.scalar(select(o.id).where(o.status == "received").limit(1))
    for action, body, message in [("dispatch", {"assignee": "火星庭"}, "未知或已停用的部门“火星庭”"),
                                  ("dispatch", {}, "承办部门：必须填写"),
                                  ("reopen", {"reason": 3}, "原因：须为文本")]:
        r = post(sup, oid, action, body)
        assert r.status_code == 422 and message in r.json()["detail"], r.text
    r = post(sup, 999999, "dispatch", {"assignee": "民一庭"})
    assert r.status_code == 404
    assert users["op"].get("/api/work_orders?status=lost").status_code == 422
    assert snapshot(hub) == before


def test_subcategory_paths_and_tags_come_from_the_taxonomy(hub, users):
    t = ok(users["op"].get("/api/work_orders/taxonomy"))
    assert set(t["categories"]) == {"consult", "query", "urge", "contact_judge", "complaint", "suggestion"}
    body = {"category": "consult", "subcategory": "立案 / 网上立案", "tags": ["材料", "材料", "立案"],
            "content": "网上立案怎么操作"}
    o = ok(users["op"].post("/api/work_orders", json=body), 201)
    assert o["subcategory"] == "立案/网上立案" and o["tags"] == ["材料", "立案"]


# ---------------------------------------------------------------------------------------------- attachments
def test_attachments_are_stored_once_and_oversized_ones_refused(hub, users):
    op = users["op"]
    o = ok(op.post("/api/work_orders", json={"category": "suggestion", "channel": "letter", "content": "来信附照片"}),
           201)
    data = b"\x89PNG" + bytes(range(256)) * 40
    a = ok(op.post(f"/api/work_orders/{o['id']}/attachments", files={"file": ("照片.png", data, "image/png")}), 201)
    assert a["size"] == len(data) and a["sha256"] == hashlib.sha256(data).hexdigest()
    got = op.get(a["url"])
    assert got.content == data and got.headers["x-content-type-options"] == "nosniff"
    assert (hub.home / "attachments" / a["sha256"][:2] / a["sha256"]).exists()
    before = snapshot(hub, o["id"])
    big = b"x" * (60 * 1024)  # the test hub allows 0.05 MB
    r = op.post(f"/api/work_orders/{o['id']}/attachments", files={"file": ("big.pdf", big, "application/pdf")})
    assert r.status_code == 413 and r.json()["detail"] == "附件不能超过0.05 MB"
    assert snapshot(hub, o["id"]) == before
    with database(hub) as db:
        assert db.scalar(select(WorkOrderAttachment.id).where(WorkOrderAttachment.sha256 == hashlib.sha256(big)
                                                              .hexdigest())) is None
    stored = [p for p in (hub.home / "attachments").rglob("*") if p.is_file()]
    assert [p.name for p in stored] == [a["sha256"]]  # nothing of the refused file, no temporary left
    html = op.post(f"/api/work_orders/{o['id']}/attachments", files={"file": ("x.html", b"<script>1</script>",
                                                                              "text/html")}).json()
    r = op.get(html["url"])
    assert r.headers["content-type"] == "application/octet-stream" and "attachment" in r.headers["content-disposition"]


# ---------------------------------------------------------------------------------------------- orders the hub files
def test_kb_settled_calls_become_closed_consult_orders_once(hub, users):
    t0 = NOW.astimezone(NOW.tzinfo) - timedelta(minutes=3)
    k = {"call_id": "kb1", "worker": "w0"}
    events = [CallOffered(**k, ts=t0, caller="13900001111", callee="12368", source="x"),
              KbDecided(**k, ts=t0 + timedelta(seconds=20), node="consult", decision="answer", faq_id="F001",
                        score=0.9, query="立案需要什么材料"),
              CallEnded(**k, ts=t0 + timedelta(seconds=60), cause="answered_by_kb", side="ivr")]
    post_events(hub, events)
    post_events(hub, [CallEnded(**k, ts=t0 + timedelta(seconds=61), cause="answered_by_kb", side="ivr")])
    with database(hub) as db:
        rows = db.scalars(select(WorkOrder).where(WorkOrder.call_id == "kb1")).all()
    assert len(rows) == 1
    o = rows[0]
    assert o.status == "closed" and o.settled_at_once and o.auto_key == "kb:kb1" and "立案需要什么材料" in o.content
    assert o.category == "consult" and "即办" in o.tags


def _message(call_id: str, purpose: str, case_number: str = "", text: str = "请法官给我回个电话") -> list:
    k = {"call_id": call_id, "worker": "w0"}
    return [CallOffered(**k, ts=NOW, caller=PHONE, callee="12368", source="x"),
            MessageRecorded(**k, ts=NOW + timedelta(seconds=40), node="m", purpose=purpose,
                            recording=f"{call_id}-{purpose}.wav", duration_s=12.0, text=text, case_number=case_number)]


def test_messages_go_to_the_cases_judge_team_department_or_supervisors(hub, users):
    first = _message("msg1", "contact_judge", "（2026）粤0305民初1234号")
    post_events(hub, first)
    post_events(hub, _message("msg2", "urge", "（2025）粤0305执1888号", "执行款什么时候到"))
    post_events(hub, _message("msg3", "complaint", "（2026）粤0305民初1234号", "法官态度不好"))
    post_events(hub, _message("msg4", "contact_judge", "", "我找法官"))  # no verified case: a supervisor decides

    def orders() -> dict[str, WorkOrder]:
        with database(hub) as db:
            return {o.call_id: o for o in db.scalars(select(WorkOrder).where(WorkOrder.auto_key.like("msg:%")))}

    got = wait_for(lambda: (x := orders()) and len(x) == 4 and x, what="four message orders")
    judge, urge, complaint, unknown = got["msg1"], got["msg2"], got["msg3"], got["msg4"]
    assert judge.status == "dispatched" and judge.assignee == "民一庭王明法官团队" and judge.category == "contact_judge"
    assert judge.feedback_due == at(2026, 12, 2, 17, 30)  # contact_judge: 2 working days
    assert judge.recordings == ["msg1-contact_judge.wav"] and "请法官给我回个电话" in judge.content
    assert urge.assignee == "执行局" and urge.feedback_due == at(2026, 12, 3, 17, 30)
    assert complaint.assignee == "督办" and complaint.category == "complaint"  # never the judge's own team
    assert unknown.status == "received" and unknown.assignee is None
    # each gets the suggested subcategory and tags within the purpose the caller chose, kept in its history
    assert (urge.subcategory, complaint.subcategory) == ("催执行/执行款发放", "工作作风/服务态度")
    assert judge.subcategory == "约见法官/电话沟通" and "留言" in judge.tags and "法官联系" in judge.tags
    with database(hub) as db:
        lines = db.scalars(select(WorkOrderHistory).where(WorkOrderHistory.action == "suggest", WorkOrderHistory
                                                          .order_id.in_([o.id for o in got.values()]))).all()
    assert len(lines) == 4 and all(h.role == "system" and len(set(h.changes["category"])) == 1 for h in lines)
    with database(hub) as db:
        note = db.scalars(select(WorkOrderHistory.note).where(WorkOrderHistory.order_id == unknown.id)).all()
    assert any("未关联已核实的案件" in n for n in note)
    deps = {d["name"]: d["kind"] for d in ok(users["sup"].get("/api/departments"))}
    assert deps["民一庭王明法官团队"] == "judge_team"
    # the same events again (a worker re-sending its spool): nothing new
    post_events(hub, first)
    time.sleep(0.5)
    assert len(orders()) == 4


# ---------------------------------------------------------------------------------------------- intake
def test_intake_api_needs_the_token_and_files_each_external_id_once(hub, users):
    anon = client(hub)
    body = {"category": "query", "content": "查询案件进度", "citizen_phone": "13700001234", "external_id": "sys-42"}
    assert anon.post("/api/intake", json=body).status_code == 401
    assert anon.post("/api/intake", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    auth = {"Authorization": f"Bearer {INTAKE_TOKEN}"}
    first = anon.post("/api/intake", json=body, headers=auth)
    assert first.status_code == 201 and first.json()["created"] is True
    again = anon.post("/api/intake", json=body, headers=auth)
    assert again.status_code == 200 and again.json()["number"] == first.json()["number"]
    r = anon.post("/api/intake", json={**body, "category": "x", "external_id": "sys-43"}, headers=auth)
    assert r.status_code == 422 and "未知的工单类别" in r.json()["detail"]
    with database(hub) as db:
        o = db.scalar(select(WorkOrder).where(WorkOrder.number == first.json()["number"]))
    assert o.channel == "api" and o.auto_key == "api:sys-42"


def test_web_form_is_rate_limited_per_address_and_tracking_shows_no_personal_data(hub, users):
    anon = client(hub)
    page = anon.get("/submit")
    assert page.status_code == 200 and "网上诉求" in page.text
    form = {"category": "consult", "citizen_name": "李娜", "citizen_phone": "13600001111",
            "content": "如何申请诉讼费缓交"}
    numbers = []
    for _ in range(2):
        r = anon.post("/api/submit", json=form)
        assert r.status_code == 201, r.text
        numbers.append(r.json()["number"])
    robot = anon.post("/api/submit", json={**form, "website": "http://spam.example"})
    assert robot.status_code == 201 and robot.json()["number"] == ""  # counted, filed nothing
    r = anon.post("/api/submit", json=form)  # 4th from this address in the hour (limit 3)
    assert r.status_code == 429 and "提交过于频繁" in r.json()["detail"] and int(r.headers["Retry-After"]) > 0
    with database(hub) as db:
        web = db.scalars(select(WorkOrder).where(WorkOrder.channel == "web")).all()
    assert sorted(o.number for o in web) == sorted(numbers)
    form_only = anon.get(f"/track/{numbers[0]}")  # the number alone shows the form, no progress
    assert form_only.status_code == 200 and 'id="last4"' in form_only.text and "已受理" not in form_only.text
    assert anon.get(f"/api/track/{numbers[0]}").status_code == 400
    assert anon.get(f"/api/track/{numbers[0]}?last4=1112").status_code == 404
    t = anon.get(f"/track?number={numbers[0]}&last4=1111")
    assert t.status_code == 200 and "已受理" in t.text and numbers[0] in t.text
    for secret in ("李娜", "13600001111", "诉讼费缓交"):
        assert secret not in t.text
    assert anon.get("/api/track/12368-20990101-0001?last4=1111").status_code == 404
    assert anon.get("/track/<script>").status_code == 404
    missing = anon.post("/api/submit", json={"category": "consult", "content": "x"})
    assert missing.status_code in (422, 429)


# ---------------------------------------------------------------------------------------------- lists
def test_lists_filter_and_count(hub, users):
    sup = users["sup"]
    r = sup.get("/api/work_orders", params={"status": "closed", "limit": 2})
    assert r.status_code == 200 and int(r.headers["X-Total-Count"]) >= len(r.json())
    assert all(o["status"] == "closed" for o in r.json())
    r = sup.get("/api/work_orders", params={"category": "contact_judge", "assignee": "民一庭王明法官团队"})
    assert [o["call_id"] for o in r.json()] == ["msg1"]
    r = sup.get("/api/work_orders", params={"q": "执行款什么时候到"})
    assert [o["call_id"] for o in r.json()] == ["msg2"]
    assert sup.get("/api/work_orders", params={"since": "2026-11-30", "until": "2026-11-30"}).json()
    assert notices(hub)  # alerts were stored along the way
