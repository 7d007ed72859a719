"""Working days for the console's due dates, on the shared calendar of ``work_orders.calendar`` (China's
official schedule via chinesecalendar, else Monday to Friday) with the hub's ``holidays`` and
``extra_workdays`` settings on top."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from zoneinfo import ZoneInfo

from work_orders.calendar import WorkCalendar as _Shared


@dataclass(frozen=True)
class WorkCalendar:
    timezone: str = "Asia/Shanghai"
    holidays: frozenset[date] = field(default_factory=frozenset)
    extra_workdays: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def of(cls, timezone: str, holidays: Iterable[date] = (), extra_workdays: Iterable[date] = ()) -> WorkCalendar:
        return cls(timezone, frozenset(holidays), frozenset(extra_workdays))

    @cached_property
    def shared(self) -> _Shared:
        return _Shared(self.holidays, self.extra_workdays, tz=self.timezone)

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
