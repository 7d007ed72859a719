"""The work orders' tables: orders, their history, notices, attachments, and the departments they go to.

Their own ``MetaData`` (``hotline.db.metadatas`` combines it with the others for Alembic); the table names are
those of migrations 0004-0007, so existing databases and the migrations are unchanged.
"""

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
    LargeBinary,
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

#: a call id's column length (the hub's ``calls.call_id``): orders keep the id of the call they came from
CALL_ID_LEN = 128
#: categories (the court's six), channels and states come from the ``work_orders`` rules; subcategories and
#: tags are checked against the taxonomy file (``work_orders.taxonomy``)
DEPARTMENT_KINDS = ("department", "judge_team")
NOTICE_AUDIENCES = ("supervisor", "assignee", "callback")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class WorkOrder(Base):
    """A work order (工单): what a citizen asked for, from any channel, through dispatch, feedback and callback.

    Every change after filing goes through ``work_orders.store`` (the row and its history line
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
        # repeat contacts: an open order of the same number or case (work_orders.contacts)
        Index("ix_work_orders_citizen_phone", "citizen_phone"),
        Index("ix_work_orders_case_number", "case_number"),
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
    call_id: Mapped[str | None] = mapped_column(String(CALL_ID_LEN), nullable=True, index=True)
    #: the call's final utterances when the order was filed ({speaker, text, at})
    transcript: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    notes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: recorded messages of the call (file names under the recordings directory)
    recordings: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: set on orders filed by the hub or another system ("auto:<call id>", "kb:<call id>", "api:<source>:<id>"):
    #: at most one order per key
    auto_key: Mapped[str | None] = mapped_column(String(CALL_ID_LEN + 32), nullable=True, unique=True)
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
    #: 重复来电: later contacts of the same number or case that joined this open order (``work_order_contacts``)
    repeat_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: the call summary for the handler (诉求, key facts, what the IVR answered): made on filing, editable
    summary: Mapped[str] = mapped_column(Text, default="", server_default="")


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


class WorkOrderContact(Base):
    """A later contact (a call) that joined an open order instead of filing a new one (重复来电)."""

    __tablename__ = "work_order_contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), index=True)
    #: a call joins one order at most
    call_id: Mapped[str | None] = mapped_column(String(CALL_ID_LEN), nullable=True, unique=True)
    channel: Mapped[str] = mapped_column(String(16), default="hotline")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: why it joined: the same number or the same case
    matched_by: Mapped[str] = mapped_column(String(16), default="phone")
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")


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


class WorkOrderVector(Base):
    """An order's text as a sentence vector (类案 analysis), kept so that a period is embedded once."""

    __tablename__ = "work_order_vectors"

    order_id: Mapped[int] = mapped_column(ForeignKey("work_orders.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class KnownIssue(Base):
    """A 类案 cluster marked as a known issue, with the note of what it led to; later clusters near its centroid
    are shown as known."""

    __tablename__ = "work_order_known_issues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
