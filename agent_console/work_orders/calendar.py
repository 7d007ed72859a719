"""Working days for the console's due dates, on the shared calendar of ``work_orders.calendar`` (China's
official schedule via chinesecalendar, then the court's holiday file, else Monday to Friday) with the hub's
``holidays`` and ``extra_workdays`` settings on top."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

from work_orders.calendar import WorkCalendar as _Shared


@dataclass(frozen=True)
class WorkCalendar:
    timezone: str = "Asia/Shanghai"
    holidays: frozenset[date] = field(default_factory=frozenset)
    extra_workdays: frozenset[date] = field(default_factory=frozenset)
    day_end: time = time(17, 30)

    @classmethod
    def of(cls, timezone: str, holidays: Iterable[date] = (), extra_workdays: Iterable[date] = (), *,
           holiday_file: Path | None = None, day_end: time = time(17, 30)) -> WorkCalendar:
        """The hub's calendar; the holiday file's days first, the hub's own settings win over them.

        Raises :class:`work_orders.calendar.CalendarError` for a malformed holiday file."""
        hol, work = set(holidays), set(extra_workdays)
        if holiday_file is not None:
            f = _Shared.from_file(holiday_file)
            hol |= set(f.holidays) - work
            work |= set(f.workdays) - set(holidays)
        return cls(timezone, frozenset(hol), frozenset(work), day_end)

    @cached_property
    def shared(self) -> _Shared:
        return _Shared(self.holidays, self.extra_workdays, tz=self.timezone, day_end=self.day_end)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def is_working_day(self, d: date) -> bool:
        return self.shared.is_workday(d)

    def next_working_day(self, after: date) -> date:
        """The first working day strictly after ``after``."""
        return self.shared.next_workday(after)
