"""Work-order rules: China's working days, deadlines, and who may move an order where (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from work_orders.calendar import CalendarError, WorkCalendar
from work_orders.numbering import format_number, parse_number
from work_orders.rules import Actor, Order, Refused, apply
from work_orders.settings import WorkOrderSettings

CN = ZoneInfo("Asia/Shanghai")
SUPERVISOR = Actor("zhang", "supervisor")
OPERATOR = Actor("li", "operator")
HANDLER = Actor("wang", "handler", team="民一庭")


def at(y, mo, d, h=10, mi=0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=CN)


@pytest.fixture
def cal():
    return WorkCalendar()


def test_official_holidays_and_make_up_working_days(cal):
    assert not cal.is_workday(date(2026, 2, 16))  # 春节
    assert cal.is_workday(date(2026, 2, 14))  # Saturday, 调休上班
    assert not cal.is_workday(date(2026, 10, 5))  # 国庆
    assert cal.is_workday(date(2026, 10, 10))  # Saturday, 调休上班
    assert not cal.is_workday(date(2026, 11, 29)) and cal.is_workday(date(2026, 11, 30))


def test_feedback_deadline_skips_holidays(cal):
    # Thursday before 中秋 (25-27 Sep): the 2nd working day after is Tuesday 29 Sep, at closing time
    assert cal.due_after(at(2026, 9, 24), 2) == datetime(2026, 9, 29, 17, 30, tzinfo=CN)
    # across 国庆, the 3rd working day is the make-up Saturday 10 Oct
    assert cal.due_after(at(2026, 9, 30), 3) == datetime(2026, 10, 10, 17, 30, tzinfo=CN)
    assert cal.workdays_between(date(2026, 9, 30), date(2026, 10, 10)) == 3


def test_same_day_dispatch_is_due_by_closing_or_the_next_working_day(cal):
    assert cal.same_day_due(at(2026, 11, 30, 10)) == datetime(2026, 11, 30, 17, 30, tzinfo=CN)
    assert cal.same_day_due(at(2026, 11, 30, 18)) == datetime(2026, 12, 1, 17, 30, tzinfo=CN)
    assert cal.same_day_due(at(2026, 11, 28, 9)) == datetime(2026, 11, 30, 17, 30, tzinfo=CN)  # Saturday
    # a UTC timestamp is read in the court's time zone: 2026-11-30 09:45 UTC is 17:45 in Beijing
    assert cal.same_day_due(datetime(2026, 11, 30, 9, 45, tzinfo=UTC)).date() == date(2026, 12, 1)


def test_holiday_file_covers_years_the_package_does_not(tmp_path):
    f = tmp_path / "holidays.yaml"
    f.write_text("holidays: [2027-01-01, 2027-02-16]\nworkdays: [2027-02-07]\n")
    cal = WorkCalendar.from_file(f)
    assert not cal.is_workday(date(2027, 1, 1))  # a Friday, closed by the file
    assert cal.is_workday(date(2027, 2, 7))  # a Sunday, open by the file
    assert cal.is_workday(date(2027, 3, 1)) and not cal.is_workday(date(2027, 3, 6))  # else Mon-Fri
    assert 2027 in cal.known_years() and 2028 not in cal.known_years()


@pytest.mark.parametrize(("text", "match"), [
    ("holidays: [2027-13-01]", r"holidays\[0\]"),
    ("holidays: 2027-01-01", "must be a list"),
    ("closed: [2027-01-01]", "only the keys"),
    ("holidays: [2027-01-01]\nworkdays: [2027-01-01]", "both holiday and working day"),
    ("holidays: [", "cannot read"),
])
def test_holiday_file_errors_name_the_entry(tmp_path, text, match):
    f = tmp_path / "h.yaml"
    f.write_text(text)
    with pytest.raises(CalendarError, match=match):
        WorkCalendar.from_file(f)


def test_numbers_read_back():
    n = format_number(date(2026, 11, 30), 7)
    assert n == "12368-20261130-0007" and parse_number(n) == (date(2026, 11, 30), 7)
    assert parse_number("12368-20261331-0001") is None and parse_number("x") is None


def _run(order: Order, action: str, actor: Actor, now: datetime, cal, **payload):
    change = apply(order, action, actor, payload, now, cal, WorkOrderSettings())
    fields = {k: v for k, v in change.fields.items() if k in Order.__dataclass_fields__}
    return Order(**{**order.__dict__, **fields, "status": change.status}), change


def test_the_closed_loop_with_a_poor_rating_reopening(cal):
    o = Order("received", "contact_judge", at(2026, 11, 30, 9))
    o, c = _run(o, "dispatch", OPERATOR, at(2026, 11, 30, 11), cal, assignee="民一庭")
    assert o.status == "dispatched" and o.feedback_due == datetime(2026, 12, 2, 17, 30, tzinfo=CN)  # 2 days
    assert "assignee" in c.alerts
    o, _ = _run(o, "accept", HANDLER, at(2026, 11, 30, 14), cal)
    o, c = _run(o, "answer", HANDLER, at(2026, 12, 1, 10), cal, feedback="已转告承办法官，将于本周内回电")
    assert o.status == "answered" and c.fields["feedback_late"] is False
    o, _ = _run(o, "start_callback", Actor("auto", "system"), at(2026, 12, 1, 11), cal)
    o2, c = _run(o, "rate", Actor("auto", "system"), at(2026, 12, 1, 11, 5), cal, rating=2)
    assert o2.status == "reopened" and "supervisor" in c.alerts and "不满意" in c.note
    o3, c = _run(o, "rate", Actor("auto", "system"), at(2026, 12, 1, 11, 5), cal, rating=5)
    assert o3.status == "closed" and c.fields["closed_at"] == at(2026, 12, 1, 11, 5)
    o2, _ = _run(o2, "dispatch", SUPERVISOR, at(2026, 12, 1, 12), cal, assignee="民一庭")
    assert o2.status == "dispatched"


def test_refused_moves_say_why_in_chinese(cal):
    o = Order("received", "consult", at(2026, 11, 30, 9))
    with pytest.raises(Refused, match="不能反馈") as e:
        apply(o, "answer", HANDLER, {"feedback": "x"}, at(2026, 11, 30, 10), cal, WorkOrderSettings())
    assert e.value.code == "wrong_state"
    with pytest.raises(Refused, match="承办部门"):
        apply(o, "dispatch", OPERATOR, {}, at(2026, 11, 30, 10), cal, WorkOrderSettings())
    with pytest.raises(Refused, match="当前角色不能转办"):
        apply(o, "dispatch", HANDLER, {"assignee": "民一庭"}, at(2026, 11, 30, 10), cal, WorkOrderSettings())
    d, _ = _run(o, "dispatch", OPERATOR, at(2026, 11, 30, 10), cal, assignee="民一庭")
    with pytest.raises(Refused, match="不是转办给本部门"):
        apply(d, "accept", Actor("zhao", "handler", team="执行局"), {}, at(2026, 11, 30, 11), cal,
              WorkOrderSettings())
    with pytest.raises(Refused, match="1至5分"):
        c = Order("callback", "consult", at(2026, 11, 30, 9))
        apply(c, "rate", OPERATOR, {"rating": 9}, at(2026, 11, 30, 11), cal, WorkOrderSettings())
    with pytest.raises(Refused, match="未知操作"):
        apply(o, "delete", SUPERVISOR, {}, at(2026, 11, 30, 11), cal, WorkOrderSettings())


def test_extension_needs_a_supervisor_and_moves_the_deadline(cal):
    o = Order("received", "urge", at(2026, 11, 30, 9))
    o, _ = _run(o, "dispatch", SUPERVISOR, at(2026, 11, 30, 10), cal, assignee="民一庭")
    due = o.feedback_due
    with pytest.raises(Refused, match="延期天数"):
        apply(o, "request_extension", HANDLER, {"workdays": 99, "reason": "鉴定未回"}, at(2026, 12, 1), cal,
              WorkOrderSettings())
    o, c = _run(o, "request_extension", HANDLER, at(2026, 12, 1), cal, workdays=2, reason="鉴定意见未出")
    assert o.extension_requested == 2 and "supervisor" in c.alerts and o.feedback_due == due
    with pytest.raises(Refused, match="待审批"):
        apply(o, "request_extension", HANDLER, {"workdays": 1, "reason": "再延"}, at(2026, 12, 1), cal,
              WorkOrderSettings())
    with pytest.raises(Refused, match="当前角色"):
        apply(o, "approve_extension", HANDLER, {}, at(2026, 12, 1), cal, WorkOrderSettings())
    o, _ = _run(o, "approve_extension", SUPERVISOR, at(2026, 12, 1, 15), cal)
    assert o.extension_requested is None
    assert o.feedback_due == datetime.combine(cal.add_workdays(due.date(), 2), time(17, 30), CN)
    assert o.feedback_due - due >= timedelta(days=2)


def test_settled_at_once_is_closed_and_counted(cal):
    o = Order("received", "consult", at(2026, 11, 30, 9))
    o, c = _run(o, "settle", Actor("kb", "system"), at(2026, 11, 30, 9, 2), cal)
    assert o.status == "closed" and c.fields["settled_at_once"] is True


def test_settings_refuse_unknown_categories():
    with pytest.raises(ValueError, match="unknown categories"):
        WorkOrderSettings(feedback_workdays={"consult": 3, "parking": 1})


def test_reminders_fire_once_each_and_catch_up_after_downtime(cal):
    from work_orders.reminders import Timeline, due_jobs

    s = WorkOrderSettings()
    t = Timeline(1, "dispatched", at(2026, 11, 30, 9), "民一庭", feedback_due=at(2026, 12, 2, 17, 30))
    assert due_jobs([t], at(2026, 12, 2, 13), cal, s) == []  # 4.5 h before: nothing yet
    sent: set[str] = set()
    first = [j for j in due_jobs([t], at(2026, 12, 2, 14), cal, s) if j.key not in sent]
    assert [j.kind for j in first] == ["feedback_reminder"] and first[0].to == "assignee"
    sent |= {j.key for j in first}
    again = [j for j in due_jobs([t], at(2026, 12, 2, 15), cal, s) if j.key not in sent]
    assert again == []  # a second pass (or a restarted hub) sends nothing twice
    # the hub was down from 16:00 to the next morning: the escalation is sent on the first pass
    late = [j for j in due_jobs([t], at(2026, 12, 3, 8, 31), cal, s) if j.key not in sent]
    assert [(j.kind, j.to) for j in late] == [("feedback_overdue", "supervisor")]
    # an approved extension moves the deadline: new keys, so the new deadline is reminded too
    t2 = Timeline(1, "dispatched", t.received_at, "民一庭", feedback_due=at(2026, 12, 4, 17, 30))
    sent |= {j.key for j in late}
    assert [j.kind for j in due_jobs([t2], at(2026, 12, 4, 14), cal, s) if j.key not in sent] == ["feedback_reminder"]


def test_received_orders_escalate_when_not_dispatched_the_same_day(cal):
    from work_orders.reminders import Timeline, due_jobs, is_overdue

    t = Timeline(2, "received", at(2026, 11, 30, 16))
    assert not is_overdue(t, at(2026, 11, 30, 17), cal)
    jobs = due_jobs([t], at(2026, 11, 30, 17, 31), cal, WorkOrderSettings())
    assert [(j.kind, j.to) for j in jobs] == [("dispatch_overdue", "supervisor")]
    assert is_overdue(t, at(2026, 11, 30, 17, 31), cal)
    answered = Timeline(3, "answered", at(2026, 11, 30, 9), answered_at=at(2026, 12, 1, 10))
    assert [j.kind for j in due_jobs([answered], at(2026, 12, 1, 10), cal, WorkOrderSettings())] == ["callback_due"]


def test_an_unreached_callback_is_retried_at_set_times_then_left_to_the_supervisors(cal):
    s = WorkOrderSettings(callback_retry_minutes=[30, 120])
    robot = Actor("auto", "system")
    o = Order("answered", "consult", at(2026, 11, 30, 9))
    now = at(2026, 12, 1, 10)
    for n, wait in ((1, 30), (2, 120)):
        o, _ = _run(o, "start_callback", robot, now, cal)
        o = Order(**{**o.__dict__, "callback_attempts": n})
        c = apply(o, "callback_failed", robot, {"reason": "no_answer"}, now, cal, s)
        assert c.status == "callback" and c.fields["next_callback_at"] == now + timedelta(minutes=wait)
        assert f"第{n}次回访未成功（no_answer）" in c.note and not c.alerts
    o = Order(**{**o.__dict__, "callback_attempts": 3})
    c = apply(o, "callback_failed", OPERATOR, {}, now, cal, s)
    assert c.fields["next_callback_at"] is None and c.alerts == ["supervisor"] and "未接通" in c.note
    with pytest.raises(Refused, match="不能回访未成功"):
        apply(Order("answered", "consult", at(2026, 11, 30, 9)), "callback_failed", robot, {}, now, cal, s)
