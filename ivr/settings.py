"""The IVR's configuration section."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BUNDLED_MENU = Path(__file__).parent / "menus" / "default.yaml"
BUNDLED_PROMPTS = Path(__file__).parent / "prompts" / "zh"

_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class WorkingHours(BaseModel):
    """When staff answer the queue; outside these hours callers leave a message instead."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["schedule", "open", "closed"] = Field(
        "schedule", description="schedule: the hours below; open/closed: always (e.g. a closure day)")
    open: str = Field("08:30", description="HH:MM, local time")
    close: str = Field("17:30", description="HH:MM, local time (24:00 = midnight)")
    days: list[int] = Field([1, 2, 3, 4, 5], description="ISO weekdays staff work: 1 = Monday ... 7 = Sunday")
    holidays: list[date] = Field(default_factory=list, description="closed on these dates (public holidays)")
    workdays: list[date] = Field(default_factory=list,
                                 description="open on these dates although not in 'days' (调休 make-up days)")
    timezone: str = Field("Asia/Shanghai", description="IANA time zone of the hours above")

    @field_validator("open", "close")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.match(v):
            raise ValueError("use HH:MM, e.g. 08:30")
        return v

    @field_validator("days")
    @classmethod
    def _days(cls, v: list[int]) -> list[int]:
        if any(d < 1 or d > 7 for d in v):
            raise ValueError("weekdays are 1 (Monday) to 7 (Sunday)")
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

    def is_open(self, at: datetime | None = None) -> bool:
        if self.mode != "schedule":
            return self.mode == "open"
        now = (at or datetime.now(ZoneInfo(self.timezone))).astimezone(ZoneInfo(self.timezone))
        day = now.date()
        if day in self.holidays:
            return False
        if day.isoweekday() not in self.days and day not in self.workdays:
            return False
        minute = now.hour * 60 + now.minute
        return _minutes(self.open) <= minute < _minutes(self.close)


class IvrSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    menu_file: Path = Field(BUNDLED_MENU, description="YAML call flow; reloaded when it changes")
    prompts_dir: Path = Field(BUNDLED_PROMPTS, description="WAV prompts named in the menu")
    menu_reload_interval_s: float = Field(2.0, gt=0, description="how often workers look for menu changes (s)")
    drain_timeout_s: float = Field(30.0, ge=0, description="on SIGTERM, wait this long for calls to end")
    max_call_duration_s: float = Field(1800.0, gt=0, description="a call is ended after this long in the IVR (s)")
    frame_gap_ms: float = Field(40.0, gt=0, description="a frame later than this counts as a gap")
    record_bridged_calls: bool = Field(
        False, description="record bridged calls under home/recordings (stereo WAV: caller left, operator right)")
    working_hours: WorkingHours = Field(default_factory=WorkingHours)

