"""The case system's tables. This package owns its own ``MetaData``; ``hotline.migrations`` combines them.

- ``cases``: the demo store's cases (primary key: the canonical case number), with a per-case salt and the
  salted hash of the 查询密码 — never the password itself;
- ``case_parties``: names and roles, in order, with the salted hash of the last 6 ID characters where the
  import gave them — never the ID number;
- ``case_imports``: one row per import (who, file, counts), so the demo cases are loaded only into a store
  that was never filled;
- ``case_verify_attempts``: every verification attempt by phone (when, caller, case, result, call) —
  never the secret typed. The lock-out counts failures here, so a restarted hub keeps them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from court_cases.case import Stage
from knowledge_base.db_types import NAMING, UTCDateTime, utcnow

STAGES = tuple(s.value for s in Stage)
ATTEMPT_RESULTS = ("ok", "wrong", "locked", "unavailable")
NUMBER_LEN = 64
WHO_LEN = 64


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class CaseRecord(Base):
    __tablename__ = "cases"
    __table_args__ = (CheckConstraint(f"stage IN {STAGES!r}", name="stage"),)

    number: Mapped[str] = mapped_column(String(NUMBER_LEN), primary_key=True)
    lookup_number: Mapped[str | None] = mapped_column(String(16), unique=True, nullable=True)
    cause: Mapped[str] = mapped_column(String(100))
    stage: Mapped[str] = mapped_column(String(16), index=True)
    hearing_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    hearing_place: Mapped[str] = mapped_column(String(64), default="")
    judge: Mapped[str] = mapped_column(String(32), default="")
    clerk: Mapped[str] = mapped_column(String(32), default="")
    department: Mapped[str] = mapped_column(String(64), default="")
    judge_team_line: Mapped[str | None] = mapped_column(String(128), nullable=True)
    enforcement_status: Mapped[str | None] = mapped_column(String(200), nullable=True)
    refund_status: Mapped[str | None] = mapped_column(String(200), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    secret_salt: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(String(128), nullable=True)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(WHO_LEN), default="")

    parties: Mapped[list[CaseParty]] = relationship(back_populates="case", order_by="CaseParty.position",
                                                    cascade="all, delete-orphan", passive_deletes=True)


class CaseParty(Base):
    __tablename__ = "case_parties"
    __table_args__ = (UniqueConstraint("case_number", "position", name="uq_case_parties_case_number_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_number: Mapped[str] = mapped_column(String(NUMBER_LEN), ForeignKey("cases.number", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    id_hash: Mapped[str | None] = mapped_column(String(128), nullable=True)

    case: Mapped[CaseRecord] = relationship(back_populates="parties")


class CaseImport(Base):
    __tablename__ = "case_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    who: Mapped[str] = mapped_column(String(WHO_LEN))
    source: Mapped[str] = mapped_column(String(255), default="")
    replace: Mapped[bool] = mapped_column(Boolean, default=False)
    total: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)


class VerifyAttempt(Base):
    """One verification attempt by phone; ``caller`` is the calling number ("" when withheld)."""

    __tablename__ = "case_verify_attempts"
    __table_args__ = (
        CheckConstraint(f"result IN {ATTEMPT_RESULTS!r}", name="result"),
        Index("ix_case_verify_attempts_case_number_at", "case_number", "at"),
        Index("ix_case_verify_attempts_caller_at", "caller", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    caller: Mapped[str] = mapped_column(String(64), default="")
    case_number: Mapped[str] = mapped_column(String(NUMBER_LEN))
    result: Mapped[str] = mapped_column(String(16))
    call_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
