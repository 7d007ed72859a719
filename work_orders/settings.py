"""The ``[work_orders]`` settings section: deadlines per category, reminders, callbacks."""

from __future__ import annotations

from datetime import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from work_orders import dial_plan

CATEGORIES = ("consult", "query", "urge", "contact_judge", "complaint", "suggestion")
CATEGORY_NAMES = {"consult": "咨询", "query": "查询", "urge": "催办", "contact_judge": "联络法官",
                  "complaint": "投诉信访", "suggestion": "意见建议"}
CHANNELS = ("hotline", "web", "walk_in", "letter", "api")
CHANNEL_NAMES = {"hotline": "热线", "web": "网上诉求", "walk_in": "来访", "letter": "来信", "api": "外部系统"}


class AutoCallbackSettings(BaseModel):
    """回访 by an outbound call: the hub hands due callbacks to IVR workers, in office hours only (``ivr.working_hours``
    on the shared calendar of working days)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(False, description=(
        "place due callbacks automatically: an IVR worker calls the citizen, speaks the handler's answer and asks "
        "for a rating 1-5 (keypad, or speech when the speech service runs); also the callback promised to a caller "
        "who left a message after hours, on its callback day (the message was received, the answer or that it is "
        "being handled; no rating)"))
    target: str = Field("", description=(
        "SIP URI of the citizen's phone through the trunk or PBX; {number} is the order's phone number "
        "(digits, a leading + kept), e.g. sip:{number}@pbx.court.example or sip:0{number}@10.0.0.5:5060"))
    interval_s: float = Field(10.0, ge=0.2, le=3600, description="how often the hub looks for due callbacks")
    max_concurrent: int = Field(2, ge=1, le=256, description="automatic callbacks in progress at once (all workers)")
    reserve_slots: int = Field(1, ge=0, le=3, description=(
        "call slots of each worker kept free for incoming callers: a worker takes a callback only while it has "
        "more free slots than this"))
    ring_timeout_s: float = Field(30.0, gt=0, le=120, description=(
        "a citizen who does not answer within this is not reached"))
    outcome_timeout_s: float = Field(600.0, ge=30, le=86400, description=(
        "a callback started but never reported (its worker died) counts as not reached after this, and is due again"))

    @model_validator(mode="after")
    def _target(self):
        t = self.target.strip()
        if t and (not t.lower().startswith(("sip:", "sips:")) or "{number}" not in t):
            raise ValueError("target must be a sip: or sips: URI with {number} in it, e.g. sip:{number}@pbx")
        if self.enabled and not t:
            raise ValueError("set target (e.g. sip:{number}@pbx.court.example) to enable automatic callbacks")
        return self

    def uri_for(self, phone: str) -> str | None:
        """The citizen's SIP URI, or None when ``phone`` is not a mainland number the dial plan allows
        (``work_orders.dial_plan``: no international, short or premium-rate numbers)."""
        verdict = dial_plan.check(phone)
        return self.target.strip().replace("{number}", verdict.number) if verdict.ok else None


class WorkOrderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    feedback_workdays: dict[str, int] = Field(
        default_factory=lambda: {"consult": 3, "query": 2, "urge": 3, "contact_judge": 2, "complaint": 5,
                                 "suggestion": 5},
        description="限期反馈: working days after dispatch by which the handler must answer, per category")
    holiday_file: Path | None = Field(None, description=(
        "YAML with 'holidays' and 'workdays' lists (YYYY-MM-DD) added to China's official schedule"))
    office_close: time = Field(time(17, 30), description="deadlines fall on this time of their day")
    office_open: time = Field(time(8, 30), description=(
        "office minutes (the 签收 deadline) run from this time to office_close on working days"))
    sign_minutes: int = Field(10, ge=0, le=7 * 480, description=(
        "签收: a dispatched order must be signed by its assignee within this many office minutes, else the assignee "
        "is reminded (0: no 签收 deadline)"))
    sign_escalate_minutes: int = Field(30, ge=1, le=14 * 480, description=(
        "still unsigned this many office minutes after dispatch: escalated to the supervisors (督办)"))
    remind_before_hours: float = Field(4.0, ge=0, le=240, description=(
        "提醒: the assignee is reminded this long before a deadline"))
    poor_rating_max: int = Field(2, ge=1, le=4, description="a callback rating at or below this reopens the order")
    callback_retry_minutes: list[int] = Field(default_factory=lambda: [30, 120, 1440], description=(
        "an unanswered automatic callback is tried again after these delays (then left to staff)"))
    max_extension_workdays: int = Field(10, ge=1, le=60, description="most working days one extension may add")
    taxonomy_file: Path | None = Field(None, description=(
        "YAML subcategory tree per category and the tag list (default: the bundled work_orders/data/taxonomy.yaml)"))
    suggest_classification: bool = Field(True, description=(
        "suggest category, subcategory and tags from an order's text (the knowledge base's embedding model) on the "
        "operator's form and on orders the hub files"))
    repeat_days: int = Field(7, ge=0, le=90, description=(
        "重复来电: a call from the same number, or about the same case, within this many days of an open order joins "
        "that order (flagged 重复来电) instead of filing a new one (0: off)"))
    supervision_team: str = Field("督办", min_length=1, max_length=128, description=(
        "assignee of complaints the hub files itself: the supervisors, never the judge's own team"))
    judge_team_format: str = Field("{department}{judge}法官团队", description=(
        "name of a judge's team made from a case ({department}, {judge}); contact_judge messages go there"))
    scheduler_interval_s: float = Field(30.0, ge=0.2, le=3600, description=(
        "how often the hub looks for due reminders, escalations and callbacks"))
    attachment_max_mb: float = Field(10.0, gt=0, le=200, description="largest attachment accepted, in MB")
    intake_token: str | None = Field(None, min_length=16, description=(
        "bearer token of POST /api/intake for other systems (unset: the intake API is off)"))
    web_form_per_hour: int = Field(5, ge=1, le=1000, description=(
        "网上诉求: submissions accepted per address per hour (captcha-free rate limit)"))
    clock_file: Path | None = Field(None, description=(
        "tests only: the work-order clock reads the current time (ISO 8601) from this file"))
    auto_callback: AutoCallbackSettings = Field(default_factory=AutoCallbackSettings)

    @model_validator(mode="after")
    def _sign_times(self):
        if self.office_open >= self.office_close:
            raise ValueError("office_open must be before office_close")
        if self.sign_minutes and self.sign_escalate_minutes <= self.sign_minutes:
            raise ValueError("sign_escalate_minutes must be more than sign_minutes (the reminder comes first)")
        return self

    @field_validator("feedback_workdays")
    @classmethod
    def _all_categories(cls, v: dict[str, int]) -> dict[str, int]:
        unknown = set(v) - set(CATEGORIES)
        if unknown:
            raise ValueError(f"unknown categories {sorted(unknown)}; known: {', '.join(CATEGORIES)}")
        missing = set(CATEGORIES) - set(v)
        if missing:
            raise ValueError(f"missing categories {sorted(missing)}")
        if any(n < 1 or n > 60 for n in v.values()):
            raise ValueError("feedback deadlines must be 1..60 working days")
        return v
