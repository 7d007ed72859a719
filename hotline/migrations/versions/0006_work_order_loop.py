"""work-order closed loop: work_orders dispatch/feedback/callback columns, history, notices, attachments,
departments, users.department (agent_console)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
CATEGORIES = ("consult", "query", "urge", "contact_judge", "complaint", "suggestion")
OLD_CHANNELS = ("hotline", "web", "walk_in", "letter")
CHANNELS = ("hotline", "web", "walk_in", "letter", "api")
OLD_STATES = ("received", "closed")
STATES = ("received", "dispatched", "in_progress", "answered", "callback", "closed", "reopened")
AUDIENCES = ("supervisor", "assignee", "callback")
KINDS = ("department", "judge_team")
NEW_INDEXES = {
    "ix_work_orders_status_feedback_due": ["status", "feedback_due"],
    "ix_work_orders_category_created_at": ["category", "created_at"],
    "ix_work_orders_assignee_status": ["assignee", "status"],
    "ix_work_orders_closed_at": ["closed_at"],
    "ix_work_orders_feedback_due": ["feedback_due"],
    "ix_work_orders_next_callback_at": ["next_callback_at"],
}
NEW_COLUMNS = [
    ("citizen_name", sa.String(length=64), "''"),
    ("citizen_id_number", sa.String(length=32), "''"),
    ("recordings", sa.JSON(), "'[]'"),
    ("updated_at", TS, None),
    ("assignee", sa.String(length=128), None),
    ("dispatch_due", TS, None),
    ("dispatched_at", TS, None),
    ("feedback_due", TS, None),
    ("extension_requested", sa.Integer(), None),
    ("answered_at", TS, None),
    ("feedback", sa.Text(), "''"),
    ("feedback_late", sa.Boolean(), "false"),
    ("overdue", sa.Boolean(), "false"),
    ("callback_started_at", TS, None),
    ("callback_attempts", sa.Integer(), "0"),
    ("next_callback_at", TS, None),
    ("rating", sa.Integer(), None),
    ("rated_at", TS, None),
    ("reopen_count", sa.Integer(), "0"),
]


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("department", sa.String(length=128), nullable=True))

    with op.batch_alter_table("work_orders") as batch:  # SQLite: the table is rebuilt
        for name in ("channel", "status"):
            batch.drop_constraint(f"ck_work_orders_{name}", type_="check")
        batch.alter_column("subcategory", existing_type=sa.String(length=64), type_=sa.String(length=255),
                           existing_nullable=False)
        for name, type_, default in NEW_COLUMNS:
            nullable = default is None and name != "updated_at"
            kw = {"server_default": sa.false() if default == "false" else sa.text(default)} if default else {}
            if name == "updated_at":
                kw = {"server_default": sa.text("CURRENT_TIMESTAMP")}
            batch.add_column(sa.Column(name, type_, nullable=nullable, **kw))
        batch.create_check_constraint("ck_work_orders_channel", f"channel IN {CHANNELS!r}")
        batch.create_check_constraint("ck_work_orders_status", f"status IN {STATES!r}")
        batch.create_check_constraint("ck_work_orders_rating", "rating IS NULL OR rating BETWEEN 1 AND 5")
    # defaults were only for existing rows; the application sets every value
    with op.batch_alter_table("work_orders") as batch:
        for name, type_, default in NEW_COLUMNS:
            if default is not None or name == "updated_at":
                batch.alter_column(name, existing_type=type_, server_default=None, existing_nullable=False)
    op.execute("UPDATE work_orders SET updated_at = created_at")
    for name, cols in NEW_INDEXES.items():
        op.create_index(name, "work_orders", cols, unique=False)

    op.create_table(
        "work_order_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("status_from", sa.String(length=16), nullable=True),
        sa.Column("status_to", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["work_orders.id"], ondelete="CASCADE",
                                name=op.f("fk_work_order_history_order_id_work_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_history")),
    )
    op.create_index(op.f("ix_work_order_history_order_id"), "work_order_history", ["order_id"], unique=False)
    op.create_index(op.f("ix_work_order_history_at"), "work_order_history", ["at"], unique=False)

    op.create_table(
        "work_order_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("read_at", TS, nullable=True),
        sa.Column("read_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint(f"audience IN {AUDIENCES!r}", name=op.f("ck_work_order_notices_audience")),
        sa.ForeignKeyConstraint(["order_id"], ["work_orders.id"], ondelete="CASCADE",
                                name=op.f("fk_work_order_notices_order_id_work_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_notices")),
        sa.UniqueConstraint("key", name=op.f("uq_work_order_notices_key")),
    )
    op.create_index(op.f("ix_work_order_notices_order_id"), "work_order_notices", ["order_id"], unique=False)
    op.create_index("ix_work_order_notices_audience_read_at", "work_order_notices", ["audience", "read_at"],
                    unique=False)
    op.create_index("ix_work_order_notices_team_read_at", "work_order_notices", ["team", "read_at"], unique=False)

    op.create_table(
        "work_order_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["work_orders.id"],
                                name=op.f("fk_work_order_attachments_order_id_work_orders"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_attachments")),
    )
    op.create_index(op.f("ix_work_order_attachments_order_id"), "work_order_attachments", ["order_id"],
                    unique=False)

    op.create_table(
        "departments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint(f"kind IN {KINDS!r}", name=op.f("ck_departments_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_departments")),
        sa.UniqueConstraint("name", name=op.f("uq_departments_name")),
    )


def downgrade() -> None:
    op.drop_table("departments")
    op.drop_index(op.f("ix_work_order_attachments_order_id"), table_name="work_order_attachments")
    op.drop_table("work_order_attachments")
    op.drop_index("ix_work_order_notices_team_read_at", table_name="work_order_notices")
    op.drop_index("ix_work_order_notices_audience_read_at", table_name="work_order_notices")
    op.drop_index(op.f("ix_work_order_notices_order_id"), table_name="work_order_notices")
    op.drop_table("work_order_notices")
    op.drop_index(op.f("ix_work_order_history_at"), table_name="work_order_history")
    op.drop_index(op.f("ix_work_order_history_order_id"), table_name="work_order_history")
    op.drop_table("work_order_history")
    for name in NEW_INDEXES:
        op.drop_index(name, table_name="work_orders")
    # orders in the new states or channel cannot go back; they are folded into the old ones
    op.execute("UPDATE work_orders SET status = 'received' WHERE status NOT IN ('received', 'closed')")
    op.execute("UPDATE work_orders SET channel = 'web' WHERE channel = 'api'")
    with op.batch_alter_table("work_orders") as batch:
        for name in ("channel", "status", "rating"):
            batch.drop_constraint(f"ck_work_orders_{name}", type_="check")
        for name, _type, _default in reversed(NEW_COLUMNS):
            batch.drop_column(name)
        batch.alter_column("subcategory", existing_type=sa.String(length=255), type_=sa.String(length=64),
                           existing_nullable=False)
        batch.create_check_constraint("ck_work_orders_channel", f"channel IN {OLD_CHANNELS!r}")
        batch.create_check_constraint("ck_work_orders_status", f"status IN {OLD_STATES!r}")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("department")
