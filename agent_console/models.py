"""The hub's tables. This package owns its own ``MetaData``; ``hotline.migrations`` combines them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from knowledge_base.db_types import NAMING, UTCDateTime, utcnow

ROLES = ("operator", "supervisor", "admin", "handler")
CALL_STATUSES = ("offered", "answered", "rejected", "ended")
ID_LEN = 128
#: work-order categories (the court's six) and channels; subcategories and tags are free (configurable later)
WORK_ORDER_CATEGORIES = ("consult", "query", "urge", "contact_judge", "complaint", "suggestion")
WORK_ORDER_CHANNELS = ("hotline", "web", "walk_in", "letter")
WORK_ORDER_STATUSES = ("received", "closed")

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

    event_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    call_id: Mapped[str | None] = mapped_column(String(ID_LEN), nullable=True, index=True)
    worker: Mapped[str] = mapped_column(String(ID_LEN), index=True)
    type: Mapped[str] = mapped_column(String(32))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class WorkOrder(Base):
    """A work order (工单): what a citizen asked for, from any channel; issue 7 adds dispatch and callbacks."""

    __tablename__ = "work_orders"
    __table_args__ = (
        CheckConstraint(f"category IN {WORK_ORDER_CATEGORIES!r}", name="category"),
        CheckConstraint(f"channel IN {WORK_ORDER_CHANNELS!r}", name="channel"),
        CheckConstraint(f"status IN {WORK_ORDER_STATUSES!r}", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: 12368-YYYYMMDD-NNNN, the day in the court's time zone, NNNN counting from 0001 each day
    number: Mapped[str] = mapped_column(String(32), unique=True)
    channel: Mapped[str] = mapped_column(String(16), default="hotline")
    category: Mapped[str] = mapped_column(String(16))
    subcategory: Mapped[str] = mapped_column(String(64), default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="received")
    settled_at_once: Mapped[bool] = mapped_column(Boolean, default=False)
    citizen_phone: Mapped[str] = mapped_column(String(64), default="")
    case_number: Mapped[str] = mapped_column(String(64), default="")
    content: Mapped[str] = mapped_column(Text, default="")
    #: the call this order came from (a call id, not a foreign key: the call row may arrive later)
    call_id: Mapped[str | None] = mapped_column(String(ID_LEN), nullable=True, index=True)
    #: the call's final utterances when the order was filed ({speaker, text, at})
    transcript: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    notes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: set on orders the hub files by itself ("callback:<call id>"): at most one per call and purpose
    auto_key: Mapped[str | None] = mapped_column(String(ID_LEN + 32), nullable=True, unique=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    callback_due: Mapped[date | None] = mapped_column(Date, nullable=True)
