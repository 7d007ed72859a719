"""What the hotline may know of a case: :class:`CaseInfo` (no verification secrets, no ID numbers).

The same model is the JSON of the HTTP contract (``GET {base}/cases/{number}``) and the record the demo store
keeps. Times without a UTC offset are read in the court's time zone (validation context ``{"tz": ...}``,
default :data:`DEFAULT_TZ`) and kept timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from court_cases.numbers import LOOKUP_MAX, LOOKUP_MIN, canonical_case_number, lookup_number

DEFAULT_TZ = "Asia/Shanghai"

#: party roles the import accepts (the court's system may send others; the model takes any short name)
PARTY_ROLES: tuple[str, ...] = (
    "原告", "被告", "第三人", "上诉人", "被上诉人", "原审原告", "原审被告", "申请人", "被申请人", "申请执行人",
    "被执行人", "再审申请人", "被申请人（原审原告）", "被申请人（原审被告）", "自诉人", "被告人", "附带民事诉讼原告人",
    "案外人", "异议人", "利害关系人", "债权人", "债务人", "管理人", "起诉人",
)


class Stage(StrEnum):
    """Where a case stands. The value is the API/file key; :attr:`label` its Chinese name."""

    filed = "filed"
    in_trial = "in_trial"
    heard = "heard"
    judged = "judged"
    enforcement = "enforcement"
    suspended = "suspended"
    closed = "closed"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def spoken(self) -> str:
        """The stage as the status sentence says it: 案件目前{spoken}。"""
        return _SPOKEN[self]

    @classmethod
    def parse(cls, value: Any) -> Stage | None:
        """A stage from its key (``in_trial``) or a Chinese name (审理中, 已立案, 立案 …), else None."""
        if isinstance(value, Stage):
            return value
        if not isinstance(value, str):
            return None
        v = value.strip()
        try:
            return cls(v.lower())
        except ValueError:
            return _BY_NAME.get(v)


_LABELS = {Stage.filed: "立案", Stage.in_trial: "审理中", Stage.heard: "已开庭", Stage.judged: "已判决",
           Stage.enforcement: "执行中", Stage.suspended: "中止", Stage.closed: "结案"}
_SPOKEN = {Stage.filed: "已经立案", Stage.in_trial: "正在审理中", Stage.heard: "已经开庭审理，等待裁判",
           Stage.judged: "已经作出判决", Stage.enforcement: "正在执行中", Stage.suspended: "处于中止状态",
           Stage.closed: "已经结案"}
_BY_NAME: dict[str, Stage] = {
    **{label: s for s, label in _LABELS.items()},
    "已立案": Stage.filed, "审理": Stage.in_trial, "在审": Stage.in_trial, "开庭": Stage.heard,
    "已审理": Stage.heard, "判决": Stage.judged, "已裁判": Stage.judged, "执行": Stage.enforcement,
    "执行阶段": Stage.enforcement, "中止审理": Stage.suspended, "中止执行": Stage.suspended, "已中止": Stage.suspended,
    "已结案": Stage.closed, "结案归档": Stage.closed, "已归档": Stage.closed,
}
STAGE_NAMES = "、".join(f"{s.value}（{s.label}）" for s in Stage)


def aware(value: datetime, tz: str | None = None) -> datetime:
    """``value`` with a time zone: a naive time is read in ``tz`` (the court's zone)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=ZoneInfo(tz or DEFAULT_TZ))
    return value


def _context_tz(info: ValidationInfo) -> str | None:
    ctx = info.context or {}
    return ctx.get("tz") if isinstance(ctx, dict) else None


class Party(BaseModel):
    """A party by name and role (names only: never an ID number, address or phone)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=64)
    role: str = Field(min_length=1, max_length=16)


class Hearing(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    at: datetime
    place: str = Field("", max_length=64)

    @field_validator("at")
    @classmethod
    def _aware(cls, v: datetime, info: ValidationInfo) -> datetime:
        return aware(v, _context_tz(info))


class CaseInfo(BaseModel):
    """One case as the hotline sees it (also the JSON body of ``GET {base}/cases/{number}``)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    case_number: str = Field(description="canonical case number, e.g. （2023）粤0305民初1234号")
    lookup_number: str | None = Field(None, description=f"short lookup number on court notices "
                                                        f"({LOOKUP_MIN}-{LOOKUP_MAX} digits)")
    cause: str = Field(min_length=1, max_length=100, description="案由, e.g. 民间借贷纠纷")
    parties: list[Party] = Field(default_factory=list, max_length=50)
    stage: Stage
    next_hearing: Hearing | None = None
    judge: str = Field("", max_length=32, description="承办法官")
    clerk: str = Field("", max_length=32, description="书记员")
    department: str = Field("", max_length=64, description="e.g. 民一庭")
    judge_team_line: str | None = Field(None, max_length=128,
                                        description="SIP URI or phone number of the judge's team (transfer)")
    enforcement_status: str | None = Field(None, max_length=200, description="执行情况, as spoken")
    refund_status: str | None = Field(None, max_length=200, description="退费 / 执行款 status, as spoken")
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC),
                                 description="when the case system last changed the case")

    @field_validator("case_number", mode="before")
    @classmethod
    def _case_number(cls, v: Any) -> Any:
        if not isinstance(v, str):
            return v
        canonical = canonical_case_number(v)
        if canonical is None:
            raise ValueError("not a case number")
        return canonical

    @field_validator("lookup_number", mode="before")
    @classmethod
    def _lookup(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if not isinstance(v, str):
            return v
        digits = lookup_number(v)
        if digits is None:
            raise ValueError("not a lookup number")
        return digits

    @field_validator("stage", mode="before")
    @classmethod
    def _stage(cls, v: Any) -> Any:
        return Stage.parse(v) or v

    @field_validator("judge_team_line", "enforcement_status", "refund_status", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("updated_at")
    @classmethod
    def _aware(cls, v: datetime, info: ValidationInfo) -> datetime:
        return aware(v, _context_tz(info))

    def brief(self) -> dict[str, Any]:
        """What an IVR worker needs after verification (no party names)."""
        return {"case_number": self.case_number, "stage": self.stage.value, "stage_name": self.stage.label,
                "judge": self.judge, "clerk": self.clerk, "department": self.department,
                "judge_team_line": self.judge_team_line}
