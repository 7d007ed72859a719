"""The IVR's configuration section."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from work_orders.calendar import WorkCalendar

BUNDLED_MENU = Path(__file__).parent / "menus" / "default.yaml"
BUNDLED_PROMPTS = Path(__file__).parent / "prompts" / "zh"

_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


#: keys this section had before working days came from the shared calendar (see WorkingHours)
_MOVED = {"holidays": "its 'holidays' list", "workdays": "its 'workdays' list (调休 make-up days)",
          "days": "its 'workdays' list, for a weekend day staff work"}


class WorkingHours(BaseModel):
    """When staff answer the queue: these hours on working days; outside them callers leave a message instead.

    Which days are working days is not set here: it is the hotline's one calendar (``work_orders.calendar``:
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


class IvrSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    menu_file: Path = Field(BUNDLED_MENU, description="YAML call flow; reloaded when it changes")
    prompts_dir: Path = Field(BUNDLED_PROMPTS, description="WAV prompts named in the menu")
    menu_reload_interval_s: float = Field(2.0, gt=0, description="how often workers look for menu changes (s)")
    drain_timeout_s: float = Field(30.0, ge=0, description="on SIGTERM, wait this long for calls to end")
    max_call_duration_s: float = Field(1800.0, gt=0, description="a call is ended after this long in the IVR (s)")
    frame_gap_ms: float = Field(40.0, gt=0, description="a frame later than this counts as a gap")
    rtp_timeout_s: float = Field(60.0, ge=0, description=(
        "a call whose caller sends no RTP this long is hung up (cause rtp_timeout; 0 = never). Phones that stop "
        "sending during silence (VAD without comfort noise) need more than the longest silence"))
    record_bridged_calls: bool = Field(
        False, description="record bridged calls under home/recordings (stereo WAV: caller left, operator right)")
    operator_transfer: Literal["bridge", "refer"] = Field("bridge", description=(
        "how an accepted caller reaches the operator's phone: bridge (the worker calls the phone and joins the two "
        "calls; both legs transcribed, and recorded with record_bridged_calls) or refer (blind transfer: a REFER "
        "asks the caller's phone to call the operator itself and the worker drops out; its call slot is free at "
        "once, but nothing of the conversation is transcribed or recorded)"))
    refer_fallback_bridge: bool = Field(True, description=(
        "refer: when the caller's phone refuses the REFER (405, 501, 603, ...), bridge the call instead; false: "
        "the offer fails (refer_refused) and the caller waits on"))
    working_hours: WorkingHours = Field(default_factory=WorkingHours)

