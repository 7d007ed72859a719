"""Working days: Monday to Friday, minus configured holidays, plus configured make-up days (调休)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class WorkCalendar:
    timezone: str = "Asia/Shanghai"
    holidays: frozenset[date] = field(default_factory=frozenset)
    extra_workdays: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def of(cls, timezone: str, holidays: Iterable[date] = (), extra_workdays: Iterable[date] = ()) -> WorkCalendar:
        return cls(timezone, frozenset(holidays), frozenset(extra_workdays))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def is_working_day(self, d: date) -> bool:
        if d in self.extra_workdays:
            return True
        return d.weekday() < 5 and d not in self.holidays

    def next_working_day(self, after: date) -> date:
        """The first working day strictly after ``after``."""
        d = after + timedelta(days=1)
        for _ in range(366):
            if self.is_working_day(d):
                return d
            d += timedelta(days=1)
        raise ValueError("no working day within a year: check the holidays setting")
