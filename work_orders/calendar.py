"""Working days for deadlines: China's official holiday schedule, the court's own additions, then weekends.

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

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import yaml

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
