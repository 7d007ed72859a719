"""Deadlines counted in office minutes: time runs only between the office's opening and closing on working days
(the work orders' calendar: China's schedule, the court's holiday file), so an order dispatched at 17:25 with 10
minutes to be signed is due at 08:35 on the next working day, not at 17:35."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from work_orders.calendar import WorkCalendar


def add_office_minutes(calendar: WorkCalendar, start: datetime, minutes: float, opens: time) -> datetime:
    """The moment ``minutes`` office minutes after ``start`` (opening ``opens``, closing ``calendar.day_end``)."""
    if minutes < 0:
        raise ValueError("minutes must be >= 0")
    if opens >= calendar.day_end:
        raise ValueError("the office must open before it closes")
    left = timedelta(minutes=minutes)
    at = start.astimezone(calendar.tz)
    day = at.date()
    while True:
        if calendar.is_workday(day):
            begin = datetime.combine(day, opens, calendar.tz)
            end = datetime.combine(day, calendar.day_end, calendar.tz)
            cur = max(at, begin)
            if cur < end:
                if cur + left <= end:
                    return cur + left
                left -= end - cur
        day += timedelta(days=1)
        at = datetime.combine(day, time(0), calendar.tz)
