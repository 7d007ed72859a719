"""The hub's tables. This package owns its own ``MetaData``; ``hotline.migrations`` combines them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
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
