"""The hub's tables. This package owns its own ``MetaData``; ``hotline.migrations`` combines them."""

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
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from knowledge_base.db_types import NAMING, UTCDateTime, utcnow
from work_orders.rules import STATES as WORK_ORDER_STATUSES
from work_orders.settings import CATEGORIES as WORK_ORDER_CATEGORIES
from work_orders.settings import CHANNELS as WORK_ORDER_CHANNELS

ROLES = ("operator", "supervisor", "admin", "handler")
CALL_STATUSES = ("offered", "answered", "rejected", "ended")
ID_LEN = 128
#: work orders: categories (the court's six), channels and states come from the ``work_orders`` rules;
#: subcategories and tags are checked against the taxonomy file (``work_orders.taxonomy``)
DEPARTMENT_KINDS = ("department", "judge_team")
NOTICE_AUDIENCES = ("supervisor", "assignee", "callback")

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


class WorkOrder(Base):
    """A work order (工单): what a citizen asked for, from any channel, through dispatch, feedback and callback.

    Every change after filing goes through ``agent_console.work_orders.moves`` (the row and its history line
    in one transaction). Indexes serve the lists and the dashboard over a million orders.
    """

    __tablename__ = "work_orders"
    __table_args__ = (
        CheckConstraint(f"category IN {WORK_ORDER_CATEGORIES!r}", name="category"),
        CheckConstraint(f"channel IN {WORK_ORDER_CHANNELS!r}", name="channel"),
        CheckConstraint(f"status IN {WORK_ORDER_STATUSES!r}", name="status"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating"),
        Index("ix_work_orders_status_feedback_due", "status", "feedback_due"),
        Index("ix_work_orders_category_created_at", "category", "created_at"),
        Index("ix_work_orders_assignee_status", "assignee", "status"),
        Index("ix_work_orders_closed_at", "closed_at"),
        Index("ix_work_orders_feedback_due", "feedback_due"),
        Index("ix_work_orders_next_callback_at", "next_callback_at"),
        # open orders only (a few percent of all): the dashboard's overdue list
        Index("ix_work_orders_open", "assignee", "category", "status", "overdue", "feedback_due",
              sqlite_where=text("status != 'closed'"), postgresql_where=text("status != 'closed'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: 12368-YYYYMMDD-NNNN, the day in the court's time zone, NNNN counting from 0001 each day
    number: Mapped[str] = mapped_column(String(32), unique=True)
    channel: Mapped[str] = mapped_column(String(16), default="hotline")
    category: Mapped[str] = mapped_column(String(16))
    #: a path in the category's subcategory tree, "立案/网上立案" ('' = none)
    subcategory: Mapped[str] = mapped_column(String(255), default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="received")
    #: 即办: settled during the call (operator answered, or the knowledge base answered and the caller hung up)
    settled_at_once: Mapped[bool] = mapped_column(Boolean, default=False)
    citizen_name: Mapped[str] = mapped_column(String(64), default="")
    citizen_phone: Mapped[str] = mapped_column(String(64), default="")
    citizen_id_number: Mapped[str] = mapped_column(String(32), default="")
    case_number: Mapped[str] = mapped_column(String(64), default="")
    content: Mapped[str] = mapped_column(Text, default="")
    #: the call this order came from (a call id, not a foreign key: the call row may arrive later)
    call_id: Mapped[str | None] = mapped_column(String(ID_LEN), nullable=True, index=True)
    #: the call's final utterances when the order was filed ({speaker, text, at})
    transcript: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    notes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: recorded messages of the call (file names under the recordings directory)
    recordings: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: set on orders filed by the hub or another system ("auto:<call id>", "kb:<call id>", "api:<source>:<id>"):
    #: at most one order per key
    auto_key: Mapped[str | None] = mapped_column(String(ID_LEN + 32), nullable=True, unique=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    #: received (接诉): the dashboard's start of handling time
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    callback_due: Mapped[date | None] = mapped_column(Date, nullable=True)
    #: department or judge's team it is dispatched to ("督办" for complaints kept by the supervisors)
    assignee: Mapped[str | None] = mapped_column(String(128), nullable=True)
    #: 当天转办: dispatch due by (set on filing, on return and on reopening)
    dispatch_due: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: 限期反馈: the handler's answer due by (per category in working days; an extension moves it)
    feedback_due: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    extension_requested: Mapped[int | None] = mapped_column(Integer, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    feedback: Mapped[str] = mapped_column(Text, default="")
    feedback_late: Mapped[bool] = mapped_column(Boolean, default=False)
    #: flagged by the scheduler when a dispatch or feedback deadline passed (督办 list); cleared when met
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    callback_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: when the next (automatic) callback attempt is due
    next_callback_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)


class WorkOrderHistory(Base):
    """One line per change of an order: who, when, what (status and changed fields)."""

    __tablename__ = "work_order_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    status_from: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status_to: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    #: changed fields: {field: [old, new]} (JSON values)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WorkOrderNotice(Base):
    """An alert (reminder, escalation, callback due, a move someone must know of), stored once per ``key``.

    The scheduler's ledger: a key from ``work_orders.reminders.Job.key`` is inserted in the same transaction as
    its history line, so nothing is sent twice and nothing is missed after a restart.
    """

    __tablename__ = "work_order_notices"
    __table_args__ = (
        CheckConstraint(f"audience IN {NOTICE_AUDIENCES!r}", name="audience"),
        Index("ix_work_order_notices_audience_read_at", "audience", "read_at"),
        Index("ix_work_order_notices_team_read_at", "team", "read_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: who is told: the supervisors, the order's assignee (``team``), or whoever does callbacks
    audience: Mapped[str] = mapped_column(String(16))
    team: Mapped[str | None] = mapped_column(String(128), nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    read_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class WorkOrderAttachment(Base):
    """A file attached to an order, stored content-addressed under ``HOTLINE_HOME/attachments``."""

    __tablename__ = "work_order_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Department(Base):
    """Where orders are dispatched: a department (庭/局/办) or a judge's team; handlers belong to one."""

    __tablename__ = "departments"
    __table_args__ = (CheckConstraint(f"kind IN {DEPARTMENT_KINDS!r}", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="department")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


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
