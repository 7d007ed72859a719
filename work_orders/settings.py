"""The ``[work_orders]`` settings section: deadlines per category, reminders, callbacks."""

from __future__ import annotations

from datetime import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

CATEGORIES = ("consult", "query", "urge", "contact_judge", "complaint", "suggestion")
CATEGORY_NAMES = {"consult": "咨询", "query": "查询", "urge": "催办", "contact_judge": "联络法官",
                  "complaint": "投诉信访", "suggestion": "意见建议"}
CHANNELS = ("hotline", "web", "walk_in", "letter", "api")


class WorkOrderSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    feedback_workdays: dict[str, int] = Field(
        default_factory=lambda: {"consult": 3, "query": 2, "urge": 3, "contact_judge": 2, "complaint": 5,
                                 "suggestion": 5},
        description="限期反馈: working days after dispatch by which the handler must answer, per category")
    holiday_file: Path | None = Field(None, description=(
        "YAML with 'holidays' and 'workdays' lists (YYYY-MM-DD) added to China's official schedule"))
    office_close: time = Field(time(17, 30), description="deadlines fall on this time of their day")
    remind_before_hours: float = Field(4.0, ge=0, le=240, description=(
        "提醒: the assignee is reminded this long before a deadline"))
    poor_rating_max: int = Field(2, ge=1, le=4, description="a callback rating at or below this reopens the order")
    callback_retry_minutes: list[int] = Field(default_factory=lambda: [30, 120, 1440], description=(
        "an unanswered automatic callback is tried again after these delays (then left to staff)"))
    max_extension_workdays: int = Field(10, ge=1, le=60, description="most working days one extension may add")
    taxonomy_file: Path | None = Field(None, description=(
        "YAML subcategory tree per category and the tag list (default: the bundled work_orders/data/taxonomy.yaml)"))
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
