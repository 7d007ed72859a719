"""Deadlines and 提醒督办 with a controllable clock against a real hub process: working days, China's holidays and
make-up days and the court's holiday file are respected; each reminder and escalation fires once — also when
the hub is stopped in the middle and started again after the deadline passed."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.work_order_support import at, notices, set_clock, staff, wait_for, wo_hub


def ok(r, code: int = 200) -> dict:
    assert r.status_code == code, r.text
    return r.json()


def file_and_dispatch(users, category: str, assignee: str | None = "民一庭") -> dict:
    o = ok(users["op"].post("/api/work_orders", json={"category": category, "channel": "walk_in",
                                                      "content": f"{category} 期限测试"}), 201)
    if assignee is None:
        return o
    return ok(users["sup"].post(f"/api/work_orders/{o['id']}/dispatch", json={"assignee": assignee}))


@pytest.fixture(scope="module")
def cal_hub(tmp_path_factory):
    home = tmp_path_factory.mktemp("wo-cal")
    holidays = home / "holidays.yaml"
    holidays.write_text("holidays: [2027-01-01]\nworkdays: [2027-01-02]\n", encoding="utf-8")
    h = wo_hub(home, at(2026, 9, 24, 10), holiday_file=str(holidays))
    yield h
    h.stop()


def test_feedback_deadlines_follow_china_s_working_days_and_the_holiday_file(cal_hub):
    users = staff(cal_hub, {"民一庭": ["hd1"]})
    # Thursday before 中秋 (25-27 Sep 2026): contact_judge's 2 working days end on Tuesday 29 Sep
    o = file_and_dispatch(users, "contact_judge")
    assert o["feedback_due"] == "2026-09-29T09:30:00+00:00"
    # across 国庆: consult's 3rd working day is the make-up Saturday 10 Oct
    set_clock(cal_hub, at(2026, 9, 30, 10))
    assert file_and_dispatch(users, "consult")["feedback_due"] == "2026-10-10T09:30:00+00:00"
    # an order received on a holiday is due for dispatch at the close of the next working day
    set_clock(cal_hub, at(2026, 10, 3, 9))
    assert file_and_dispatch(users, "query", None)["dispatch_due"] == "2026-10-08T09:30:00+00:00"  # 国庆 1-7 Oct
    # 2027 is not in chinesecalendar 1.11: the holiday file closes 1 Jan and opens Saturday 2 Jan
    set_clock(cal_hub, at(2026, 12, 31, 10))
    assert file_and_dispatch(users, "query")["feedback_due"] == "2027-01-04T09:30:00+00:00"  # 2 days: 2 Jan, 4 Jan
    # an approved extension counts working days from the old deadline
    o = file_and_dispatch(users, "suggestion")  # 5 days: 2, 4, 5, 6, 7 Jan
    assert o["feedback_due"] == "2027-01-07T09:30:00+00:00"
    ok(users["hd1"].post(f"/api/work_orders/{o['id']}/request_extension", json={"workdays": 3, "reason": "需调卷"}))
    e = ok(users["sup"].post(f"/api/work_orders/{o['id']}/approve_extension", json={}))
    assert e["feedback_due"] == "2027-01-12T09:30:00+00:00"  # 8, 11, 12 Jan


def _kinds(hub, order_id: int) -> Counter:
    return Counter(n.kind for n in notices(hub, order_id) if n.kind in (
        "dispatch_overdue", "feedback_reminder", "feedback_overdue", "callback_due"))


def test_reminders_and_escalations_fire_once_each_across_a_hub_restart(tmp_path):
    # the 签收 deadline is off here (tests/test_work_order_sign.py covers it): these orders stay unsigned for days
    hub = wo_hub(tmp_path / "home", at(2026, 11, 30, 10), remind_before_hours="4", sign_minutes="0")
    try:
        users = staff(hub, {"民一庭": ["hd1"]})
        a = file_and_dispatch(users, "contact_judge")  # due Wed 2 Dec 17:30, reminder from 13:30
        b = file_and_dispatch(users, "consult", None)  # to be dispatched by Mon 30 Nov 17:30
        assert a["feedback_due"] == "2026-12-02T09:30:00+00:00"
        time.sleep(1.0)  # five scheduler passes: nothing is due yet
        assert _kinds(hub, a["id"]) == Counter() and _kinds(hub, b["id"]) == Counter()

        set_clock(hub, at(2026, 12, 2, 13))  # b's dispatch is overdue; a's reminder is not due yet
        wait_for(lambda: _kinds(hub, b["id"])["dispatch_overdue"] == 1, what="dispatch_overdue")
        time.sleep(0.6)
        assert _kinds(hub, a["id"]) == Counter()
        sup = ok(users["sup"].get("/api/work_orders/supervision"))
        assert [o["id"] for o in sup["overdue"]] == [b["id"]]
        assert any(n["kind"] == "dispatch_overdue" and n["order_id"] == b["id"] for n in sup["alerts"])

        set_clock(hub, at(2026, 12, 2, 13, 31))
        wait_for(lambda: _kinds(hub, a["id"])["feedback_reminder"] == 1, what="feedback_reminder")
        inbox = ok(users["hd1"].get("/api/inbox"))
        assert any(n["kind"] == "feedback_reminder" and n["order_id"] == a["id"] for n in inbox["notices"])
        time.sleep(0.6)
        hub.stop()  # the hub is down while the deadline passes

        set_clock(hub, at(2026, 12, 3, 9))
        hub.start()
        wait_for(lambda: _kinds(hub, a["id"])["feedback_overdue"] == 1, what="feedback_overdue after restart")
        time.sleep(1.0)
        hub.stop()
        hub.start()  # and once more: nothing is sent again
        time.sleep(1.0)
        assert _kinds(hub, a["id"]) == Counter({"feedback_reminder": 1, "feedback_overdue": 1})
        assert _kinds(hub, b["id"]) == Counter({"dispatch_overdue": 1})
        sup = ok(users["sup"].get("/api/work_orders/supervision"))
        assert {o["id"] for o in sup["overdue"]} == {a["id"], b["id"]}
        detail = ok(users["sup"].get(f"/api/work_orders/{a['id']}"))
        assert detail["overdue"] is True
        assert [h["action"] for h in detail["history"]] == ["create", "dispatch", "feedback_reminder",
                                                            "feedback_overdue"]
        assert "列入督办" in detail["history"][-1]["note"]
        # a late answer is marked late, clears the flag, and makes a callback due once
        ans = ok(users["hd1"].post(f"/api/work_orders/{a['id']}/answer", json={"feedback": "已联系当事人"}))
        assert ans["feedback_late"] is True and ans["overdue"] is False
        wait_for(lambda: _kinds(hub, a["id"])["callback_due"] == 1, what="callback_due")
        time.sleep(0.6)
        assert _kinds(hub, a["id"])["callback_due"] == 1
        ops = ok(users["op"].get("/api/work_orders/notices"))
        assert [n["kind"] for n in ops if n["order_id"] == a["id"]] == ["callback_due"]
    finally:
        hub.stop()
