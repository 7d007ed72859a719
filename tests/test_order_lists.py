"""The four lists (issue 16, part 5) through the API of a real hub with the movable work-order clock: 报告单 (a
complaint naming a judge, a repeat caller), 督办单 (dispatch overdue), 核查单 (open complaints), 回访单 (an answered
order, a caller who hung up in the queue: a callback due); who may see each (a handler none, an operator only the
回访单); CSV and XLSX exports with the reasons, masked for all but admins."""

from __future__ import annotations

import io
from datetime import timedelta

import openpyxl
import pytest

from ivr.contract import CallEnded, QueueLeft
from tests.ops_support import post_events, queued_call
from tests.work_order_support import at, set_clock, staff, wait_for, wo_hub

NOW = at(2026, 11, 30, 10)  # a Monday
PHONE = "13812345678"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = wo_hub(tmp_path_factory.mktemp("lists"), NOW)
    yield h
    h.stop()


@pytest.fixture(scope="module")
def users(hub):
    return staff(hub, {"民一庭": ["hd1"]})


def ok(r, code: int = 200):
    assert r.status_code == code, r.text
    return r.json()


def listed(c, kind: str) -> dict[int, list[str]]:
    return {o["id"]: o["reasons"] for o in ok(c.get(f"/api/work_orders/lists/{kind}?since=2026-11-01"))["orders"]}


def test_the_four_lists_their_rules_roles_and_exports(hub, users):
    op, sup, adm, hd1 = users["op"], users["sup"], users["adm"], users["hd1"]
    complaint = ok(op.post("/api/work_orders", json={
        "category": "complaint", "channel": "walk_in", "content": "投诉王明法官开庭迟到两小时",
        "citizen_phone": PHONE}), 201)
    answered = ok(op.post("/api/work_orders", json={"category": "query", "content": "查询开庭时间"}), 201)
    ok(sup.post(f"/api/work_orders/{answered['id']}/dispatch", json={"assignee": "民一庭"}))
    ok(hd1.post(f"/api/work_orders/{answered['id']}/answer", json={"feedback": "12月8日上午9时开庭"}))
    # a caller hangs up in the queue twice: one order 未接通回拨, the second call joins it (重复来电)
    for n, call_id in enumerate(("lq1", "lq2")):
        t0 = NOW + timedelta(minutes=n)
        post_events(hub, [*queued_call(call_id, caller="13900001111", said="我想问一下怎么立案", t0=t0),
                          QueueLeft(call_id=call_id, worker="w0", ts=t0 + timedelta(seconds=30),
                                    node="consult_staff", outcome="hangup"),
                          CallEnded(call_id=call_id, worker="w0", ts=t0 + timedelta(seconds=31),
                                    cause="caller_hangup", side="caller")])
    missed = wait_for(lambda: [o for o in ok(op.get("/api/work_orders?call_id=lq1")) if o["repeat_count"] == 1],
                      what="the joined repeat")[0]

    lists = ok(sup.get("/api/work_orders/lists"))
    assert [x["title"] for x in lists] == ["报告单", "督办单", "核查单", "回访单"]
    assert all(x["rule"] and x["actors"] for x in lists)
    report = listed(sup, "report")
    assert report[complaint["id"]] == ["涉及工作人员的投诉"] and report[missed["id"]] == ["重复来电1次"]
    assert answered["id"] not in report
    assert listed(sup, "verification") == {complaint["id"]: ["投诉待核查"]}
    callbacks = listed(op, "callbacks")
    assert callbacks[answered["id"]] == ["办理结果待回访"]
    assert callbacks[missed["id"]] == ["未接通回拨，应于11月30日回电"] and complaint["id"] not in callbacks
    assert listed(sup, "supervision") == {}

    # the next morning the received orders were not dispatched in time: 督办单
    set_clock(hub, NOW + timedelta(days=1))
    late = listed(sup, "supervision")
    assert late[complaint["id"]] == ["超期"] and late[missed["id"]] == ["超期"] and answered["id"] not in late

    # who may see them: a handler none, an operator only the 回访单
    for kind in ("report", "supervision", "verification", "callbacks"):
        assert hd1.get(f"/api/work_orders/lists/{kind}").status_code == 403
    assert op.get("/api/work_orders/lists/report").status_code == 403
    assert [x["kind"] for x in ok(op.get("/api/work_orders/lists"))] == ["callbacks"]

    # exports: CSV with a BOM, the reasons and numbers masked for supervisors; XLSX in clear for admins
    csv = sup.get("/api/work_orders/lists/report/export?format=csv&since=2026-11-01")
    assert csv.status_code == 200 and csv.content.startswith(b"\xef\xbb\xbf")
    text = csv.content.decode("utf-8-sig")
    assert text.startswith("报告单（2026-11-01至2026-12-01）")
    assert "涉及工作人员的投诉" in text and "重复来电1次" in text
    assert PHONE not in text and "138****5678" in text
    x = adm.get("/api/work_orders/lists/report/export?format=xlsx&since=2026-11-01")
    rows = list(openpyxl.load_workbook(io.BytesIO(x.content)).active.values)
    assert rows[0][:2] == ("工单编号", "列入原因") and len(rows) == 3
    assert any(r[1] == "涉及工作人员的投诉" and r[14] == PHONE for r in rows[1:])
    assert hd1.get("/api/work_orders/lists/verification/export").status_code == 403
    set_clock(hub, NOW)
