"""Working days for deadlines: China's official holiday schedule, the court's own additions, then weekends; and the
working hours on those days (:class:`WorkingHours`, the ``ivr.working_hours`` section) — the hotline's one calendar
and one working-hours type, for the IVR's after-hours decision, work-order deadlines and automatic callbacks.

The State Council publishes each year's holidays and make-up working days (调休上班) in November or
December; the ``chinesecalendar`` package carries them (2004–2026 in 1.11.0). A court adds what the
package does not know yet (next year's schedule, local closures) in a holiday file::

    # holidays.yaml
    holidays: [2027-01-01, 2027-02-16]     # closed
    workdays: [2027-02-07]                 # open although a weekend (调休上班)

The file wins over the package, and the package over the plain Monday-to-Friday rule, which is used
only for years neither knows (:meth:`WorkCalendar.known_years` lets ``hotline doctor`` warn).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: the package's own data ends here; later years fall back to the holiday file or to weekends
OFFICIAL_YEARS = range(2004, 2027)


class CalendarError(ValueError):
    """The holiday file is malformed; the message names the file and the entry."""


@lru_cache(maxsize=4096)
def _official(d: date) -> bool | None:
    try:
        return bool(chinese_calendar.is_workday(d))
    except NotImplementedError:
        return None


class WorkCalendar:
    """Which days are working days, and the office's closing time that deadlines fall on."""

    def __init__(self, holidays: Iterable[date] = (), workdays: Iterable[date] = (), *,
                 tz: str = "Asia/Shanghai", day_end: time = time(17, 30)):
        self.holidays = frozenset(holidays)
        self.workdays = frozenset(workdays)
        both = self.holidays & self.workdays
        if both:
            raise CalendarError(f"dates both holiday and working day: {sorted(map(str, both))}")
        self.tz = ZoneInfo(tz)
        self.day_end = day_end

    @classmethod
    def from_file(cls, path: Path | None, **kw) -> WorkCalendar:
        if path is None:
            return cls(**kw)
        try:
            # every scalar as a string: dates are checked here, so a bad one is named, not a YAML trace
            data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=yaml.BaseLoader) or {}
        except (OSError, yaml.YAMLError) as e:
            raise CalendarError(f"{path}: cannot read the holiday file: {e}") from None
        if not isinstance(data, dict) or set(data) - {"holidays", "workdays"}:
            raise CalendarError(f"{path}: expected only the keys 'holidays' and 'workdays'")
        days: dict[str, list[date]] = {}
        for key in ("holidays", "workdays"):
            items = data.get(key) or []
            if not isinstance(items, list):
                raise CalendarError(f"{path}: '{key}' must be a list of dates")
            days[key] = []
            for i, v in enumerate(items):
                try:
                    days[key].append(date.fromisoformat(str(v)))
                except ValueError:
                    raise CalendarError(f"{path}: {key}[{i}] = {v!r} is not a date (YYYY-MM-DD)") from None
        return cls(days["holidays"], days["workdays"], **kw)

    def known_years(self) -> set[int]:
        return set(OFFICIAL_YEARS) | {d.year for d in self.holidays | self.workdays}

    def is_workday(self, d: date) -> bool:
        if d in self.workdays:
            return True
        if d in self.holidays:
            return False
        official = _official(d)
        return d.weekday() < 5 if official is None else official

    def next_workday(self, d: date, *, include: bool = False) -> date:
        d = d if include else d + timedelta(days=1)
        while not self.is_workday(d):
            d += timedelta(days=1)
        return d

    def add_workdays(self, d: date, n: int) -> date:
        """The ``n``-th working day after ``d`` (``n`` = 0: ``d`` itself if a working day, else the next)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        d = self.next_workday(d, include=True) if n == 0 else d
        for _ in range(n):
            d = self.next_workday(d)
        return d

    def workdays_between(self, start: date, end: date) -> int:
        """Working days in (start, end]."""
        n, d = 0, start
        while d < end:
            d += timedelta(days=1)
            n += self.is_workday(d)
        return n

    def close_of(self, d: date) -> datetime:
        """The office's closing time on ``d``, as an aware datetime."""
        return datetime.combine(d, self.day_end, self.tz)

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def same_day_due(self, received: datetime) -> datetime:
        """当天转办: dispatch is due by closing time of the day received, or of the next working day when the
        order came in after closing or on a day off."""
        local = received.astimezone(self.tz)
        d = local.date()
        if self.is_workday(d) and local.time() < self.day_end:
            return self.close_of(d)
        return self.close_of(self.next_workday(d))

    def due_after(self, start: datetime, workdays: int) -> datetime:
        """限期反馈: closing time of the ``workdays``-th working day after the day of ``start``."""
        return self.close_of(self.add_workdays(self.local_date(start), workdays))


_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


#: keys this section had before working days came from the shared calendar (see WorkingHours)
_MOVED = {"holidays": "its 'holidays' list", "workdays": "its 'workdays' list (调休 make-up days)",
          "days": "its 'workdays' list, for a weekend day staff work"}


class WorkingHours(BaseModel):
    """When staff answer the queue (``ivr.working_hours``): these hours on working days; outside them callers leave
    a message instead, and automatic callbacks wait.

    Which days are working days is not set here: it is the hotline's one calendar (:class:`WorkCalendar`:
    China's official schedule with its 调休 make-up days, then the court's ``work_orders.holiday_file``), the
    same that sets work-order deadlines and callbacks."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["schedule", "open", "closed"] = Field(
        "schedule", description="schedule: the hours below on working days; open/closed: always (e.g. a closure day)")
    open: str = Field("08:30", description="HH:MM, local time")
    close: str = Field("17:30", description="HH:MM, local time (24:00 = midnight)")
    timezone: str = Field("Asia/Shanghai", description="IANA time zone of the hours above")

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, where in _MOVED.items():
                if key in data:
                    raise ValueError(
                        f"'ivr.working_hours.{key}' is gone: working days come from China's official schedule and "
                        f"the holiday file named by 'work_orders.holiday_file' (YAML; put the days in {where}), "
                        f"shared with the work-order deadlines")
        return data

    @field_validator("open", "close")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError("use HH:MM, e.g. 08:30")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @model_validator(mode="after")
    def _order(self):
        if _minutes(self.open) >= _minutes(self.close):
            raise ValueError("'open' must be before 'close'")
        return self

    def is_open(self, at: datetime | None = None, calendar: WorkCalendar | None = None) -> bool:
        """Open at ``at`` (now) on ``calendar``'s working days (default: China's official schedule alone)."""
        if self.mode != "schedule":
            return self.mode == "open"
        now = (at or datetime.now(ZoneInfo(self.timezone))).astimezone(ZoneInfo(self.timezone))
        if not (calendar or _OFFICIAL).is_workday(now.date()):
            return False
        minute = now.hour * 60 + now.minute
        return _minutes(self.open) <= minute < _minutes(self.close)


_OFFICIAL = WorkCalendar()


@dataclass(frozen=True)
class OfficeHours:
    """The worker's answer to "is staff there now?": ``ivr.working_hours`` on the shared calendar (with the
    court's holiday file), as the handoff verb asks it."""

    hours: WorkingHours
    calendar: WorkCalendar

    def is_open(self, at: datetime | None = None) -> bool:
        return self.hours.is_open(at, self.calendar)
