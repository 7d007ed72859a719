"""签收: a dispatched order must be signed by its team within ``work_orders.sign_minutes`` office minutes (default
10), else the team is reminded once, and once ``sign_escalate_minutes`` have passed the supervisors are told once
and the order goes on the 督办 list; signing stops both. Office minutes run from ``office_open`` to
``office_close`` on working days only. Against a real hub process with the movable work-order clock."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from pydantic import ValidationError

from tests.work_order_support import at, notices, set_clock, staff, wait_for, wo_hub
from work_orders.calendar import WorkCalendar
from work_orders.settings import WorkOrderSettings
from work_orders.working_time import add_office_minutes

SIGN_KINDS = ("sign_reminder", "sign_overdue")


def ok(r, code: int = 200) -> dict:
    assert r.status_code == code, r.text
    return r.json()


def _sign(hub, order_id: int) -> Counter:
    return Counter(n.kind for n in notices(hub, order_id) if n.kind in SIGN_KINDS)


def _passes() -> None:
    time.sleep(1.0)  # five scheduler passes (every 0.2 s)


def test_office_minutes_skip_nights_weekends_and_holidays():
    cal = WorkCalendar()
    opens = at(2026, 1, 1, 8, 30).timetz()
    assert add_office_minutes(cal, at(2026, 12, 1, 10), 10, opens) == at(2026, 12, 1, 10, 10)
    assert add_office_minutes(cal, at(2026, 12, 1, 17, 25), 10, opens) == at(2026, 12, 2, 8, 35)  # overnight
    assert add_office_minutes(cal, at(2026, 12, 4, 17, 25), 10, opens) == at(2026, 12, 7, 8, 35)  # Fri -> Mon
    assert add_office_minutes(cal, at(2026, 12, 1, 6, 0), 10, opens) == at(2026, 12, 1, 8, 40)  # before opening
    # 国庆 2026: 1-7 Oct closed; an order dispatched on 30 Sep after hours is due on 8 Oct
    assert add_office_minutes(cal, at(2026, 9, 30, 18), 10, opens) == at(2026, 10, 8, 8, 40)


@pytest.fixture()
def hub(tmp_path):
    h = wo_hub(tmp_path / "home", at(2026, 11, 30, 17, 25))  # Monday, five minutes before closing
    yield h
    h.stop()


def test_an_unsigned_order_is_reminded_and_escalated_once_each_and_signing_stops_it(hub):
    users = staff(hub, {"民一庭": ["hd1"]})
    sup, hd1 = users["sup"], users["hd1"]

    def dispatched(content: str) -> dict:
        o = ok(users["op"].post("/api/work_orders", json={"category": "urge", "channel": "walk_in",
                                                          "content": content}), 201)
        return ok(sup.post(f"/api/work_orders/{o['id']}/dispatch", json={"assignee": "民一庭"}))

    a = dispatched("催执行款，签收期限测试")  # 17:25: 5 office minutes today, 5 more from 08:30 tomorrow
    _passes()
    assert _sign(hub, a["id"]) == Counter()
    set_clock(hub, at(2026, 12, 1, 8, 0))  # 14.5 hours later, but only 5 office minutes: nothing yet
    _passes()
    assert _sign(hub, a["id"]) == Counter()

    set_clock(hub, at(2026, 12, 1, 8, 36))  # 签收 was due 08:35: the team is reminded
    wait_for(lambda: _sign(hub, a["id"])["sign_reminder"] == 1, what="sign_reminder")
    _passes()
    assert _sign(hub, a["id"]) == Counter({"sign_reminder": 1})
    inbox = ok(hd1.get("/api/inbox"))
    mine = [n for n in inbox["notices"] if n["order_id"] == a["id"]]
    assert [n["kind_name"] for n in mine if n["kind"] == "sign_reminder"] == ["签收提醒"]
    assert "请尽快签收" in mine[0]["message"]
    assert a["id"] not in [o["id"] for o in ok(sup.get("/api/work_orders/supervision"))["overdue"]]

    b = dispatched("催审理，转办后及时签收")  # 08:36, signed at 08:40: neither reminded nor escalated
    set_clock(hub, at(2026, 12, 1, 8, 40))
    ok(hd1.post(f"/api/work_orders/{b['id']}/accept", json={}))

    set_clock(hub, at(2026, 12, 1, 8, 56))  # 30 office minutes after a's dispatch: the supervisors are told
    wait_for(lambda: _sign(hub, a["id"])["sign_overdue"] == 1, what="sign_overdue")
    _passes()
    assert _sign(hub, a["id"]) == Counter({"sign_reminder": 1, "sign_overdue": 1})
    board = ok(sup.get("/api/work_orders/supervision"))
    assert [o["id"] for o in board["overdue"]] == [a["id"]]
    assert any(n["kind"] == "sign_overdue" and n["order_id"] == a["id"] and "仍未签收" in n["message"]
               for n in board["alerts"])
    detail = ok(sup.get(f"/api/work_orders/{a['id']}"))
    assert [h["action"] for h in detail["history"]] == ["create", "dispatch", "sign_reminder", "sign_overdue"]
    assert detail["overdue"] is True

    c = dispatched("联系法官，提醒后签收")  # 08:56; reminded at 09:06, signed at 09:10, never escalated
    set_clock(hub, at(2026, 12, 1, 9, 7))
    wait_for(lambda: _sign(hub, c["id"])["sign_reminder"] == 1, what="sign_reminder of c")
    set_clock(hub, at(2026, 12, 1, 9, 10))
    ok(hd1.post(f"/api/work_orders/{c['id']}/accept", json={}))

    signed = ok(hd1.post(f"/api/work_orders/{a['id']}/accept", json={}))  # 签收 at last: off the 督办 list
    assert signed["status"] == "in_progress" and signed["overdue"] is False
    set_clock(hub, at(2026, 12, 1, 11, 0))
    _passes()
    assert _sign(hub, a["id"]) == Counter({"sign_reminder": 1, "sign_overdue": 1})
    assert _sign(hub, b["id"]) == Counter()
    assert _sign(hub, c["id"]) == Counter({"sign_reminder": 1})
    assert ok(sup.get("/api/work_orders/supervision"))["overdue"] == []


def test_sign_settings_are_checked():
    assert WorkOrderSettings().sign_minutes == 10
    with pytest.raises(ValidationError, match="sign_escalate_minutes must be more than sign_minutes"):
        WorkOrderSettings(sign_minutes=30, sign_escalate_minutes=20)
    with pytest.raises(ValidationError, match="office_open must be before office_close"):
        WorkOrderSettings(office_open="18:00")
