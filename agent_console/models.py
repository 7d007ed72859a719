"""The hub's tables (the work orders' are in ``work_orders.models``). This package owns its own ``MetaData``;
``hotline.migrations`` combines them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from knowledge_base.db_types import NAMING, UTCDateTime, utcnow
from work_orders.models import CALL_ID_LEN

ROLES = ("operator", "supervisor", "admin", "handler")
CALL_STATUSES = ("offered", "answered", "rejected", "ended")
ID_LEN = CALL_ID_LEN

class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN {ROLES!r}", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(128), default="")
    sip_uri: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: work-order categories this operator takes calls for; empty or None = all
    skills: Mapped[list[str] | None] = mapped_column(JSON, nullable=True, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: a handler's department or judge's team (a ``departments.name``): the work orders they see and answer
    department: Mapped[str | None] = mapped_column(String(128), nullable=True)


class LoginSession(Base):
    """A server-side login session; the cookie holds a random token, the table its SHA-256."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Call(Base):
    """One call record, folded from its events (see ``agent_console.calls.ingest``)."""

    __tablename__ = "calls"
    __table_args__ = (
        CheckConstraint(f"status IN {CALL_STATUSES!r}", name="status"),
        Index("ix_calls_worker_status", "worker", "status"),
    )

    call_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    direction: Mapped[str] = mapped_column(String(16), default="inbound")
    caller: Mapped[str] = mapped_column(Text, default="")
    callee: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(Text, default="")
    sip_call_id: Mapped[str] = mapped_column(Text, default="")
    worker: Mapped[str] = mapped_column(String(ID_LEN), default="")
    #: offered_at, else the time of the call's first event (the offer may arrive late); sorts calls
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="offered")
    end_cause: Mapped[str | None] = mapped_column(Text, nullable=True)
    end_side: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    menu_path: Mapped[list[str]] = mapped_column(JSON, default=list)
    digits: Mapped[str] = mapped_column(Text, default="")
    prompts: Mapped[list[str]] = mapped_column(JSON, default=list)
    transcript: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True, default=list)  # finals
    handoff_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    media: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CallEventRecord(Base):
    """Every event a worker or the supervisor sent, stored once (``event_id`` is the key)."""

    __tablename__ = "call_events"
    __table_args__ = (Index("ix_call_events_type_ts", "type", "ts"),)  # the dashboard's unanswered questions

    event_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    call_id: Mapped[str | None] = mapped_column(String(ID_LEN), nullable=True, index=True)
    worker: Mapped[str] = mapped_column(String(ID_LEN), index=True)
    type: Mapped[str] = mapped_column(String(32))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


#: upper edges (hours) of the dashboard's handling-time histogram buckets h00..h23 (h23: 720 hours and more)
HANDLING_EDGES = (0.25, 1, 2, 4, 8, 12, 16, 24, 32, 40, 48, 60, 72, 84, 96, 120, 144, 168, 216, 264, 336, 504, 720)


class DashboardMeta(Base):
    """The zone the dashboard's day summaries are kept in (one row; migration 0007)."""

    __tablename__ = "dashboard_meta"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    #: the zone's UTC offset, which SQLite's triggers add to get the court's day
    offset_minutes: Mapped[int] = mapped_column(Integer)


class DashboardOrderDay(Base):
    """Work-order sums per court day, category and department (assignee, '' = none), kept by triggers (0007).

    received/settled_at_once count on the day received, closed/handling_hours/h00..h23 on the day closed,
    rated/rating_sum/satisfied (4-5) on the day rated.
    """

    __tablename__ = "dashboard_order_days"
    __table_args__ = {"sqlite_with_rowid": False}  # rows stored in key order: a period is one sequential read

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    category: Mapped[str] = mapped_column(String(16), primary_key=True)
    department: Mapped[str] = mapped_column(String(128), primary_key=True)
    received: Mapped[int] = mapped_column(Integer)
    settled_at_once: Mapped[int] = mapped_column(Integer)
    closed: Mapped[int] = mapped_column(Integer)
    handling_hours: Mapped[float] = mapped_column(Float)
    rated: Mapped[int] = mapped_column(Integer)
    rating_sum: Mapped[int] = mapped_column(Integer)
    satisfied: Mapped[int] = mapped_column(Integer)


for _i in range(len(HANDLING_EDGES) + 1):
    setattr(DashboardOrderDay, f"h{_i:02d}", mapped_column(f"h{_i:02d}", Integer, nullable=False))


class DashboardCallDay(Base):
    """Calls per court day started: all, reaching the consult menu, answered by the knowledge base (0007)."""

    __tablename__ = "dashboard_call_days"
    __table_args__ = {"sqlite_with_rowid": False}

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    calls: Mapped[int] = mapped_column(Integer)
    consult: Mapped[int] = mapped_column(Integer)
    answered_by_kb: Mapped[int] = mapped_column(Integer)
