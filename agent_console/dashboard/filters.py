"""The dashboard's filters: a period of whole days in the court's time zone, a category, a department.

``from``/``to`` are local dates (YYYY-MM-DD), both included; the period is ``[start, end)`` in UTC, from the
start of ``from`` to the start of the day after ``to`` in the court's zone. A bad filter raises
:class:`FilterError` with a message for the supervisor (the API answers 422 with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from work_orders.settings import CATEGORIES

DEFAULT_DAYS = 30
MAX_DAYS = 366
DEPARTMENT_MAX = 128


class FilterError(ValueError):
    """A filter the dashboard cannot use; ``message`` is Simplified Chinese."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Filters:
    start: date  # first local day, included
    end: date  # last local day, included
    category: str | None
    department: str | None
    tz: ZoneInfo

    @property
    def start_utc(self) -> datetime:
        return datetime.combine(self.start, time(0), self.tz).astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        """The start of the day after ``end`` (excluded)."""
        return datetime.combine(self.end + timedelta(days=1), time(0), self.tz).astimezone(UTC)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def as_dict(self) -> dict[str, str | None]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "category": self.category,
                "department": self.department, "timezone": self.tz.key}


def _date(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise FilterError(f"{what}“{value}”不是有效日期，请使用 YYYY-MM-DD 格式") from None


def parse_filters(from_: str | None, to: str | None, category: str | None, department: str | None, *,
                  today: date, tz: ZoneInfo) -> Filters:
    """Filters from query parameters (empty = default: the last 30 days up to today, every category/department)."""
    end = _date(to, "结束日期") if to and to.strip() else today
    start = _date(from_, "开始日期") if from_ and from_.strip() else end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise FilterError("开始日期不能晚于结束日期")
    if (end - start).days + 1 > MAX_DAYS:
        raise FilterError(f"时间段不能超过{MAX_DAYS}天")
    cat = (category or "").strip() or None
    if cat is not None and cat not in CATEGORIES:
        raise FilterError(f"未知的工单类别“{cat}”")
    dep = (department or "").strip() or None
    if dep is not None and len(dep) > DEPARTMENT_MAX:
        raise FilterError(f"部门名称不能超过{DEPARTMENT_MAX}个字符")
    return Filters(start, end, cat, dep, tz)
