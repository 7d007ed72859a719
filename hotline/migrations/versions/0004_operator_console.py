"""operator console: users.skills, work_orders (agent_console)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("skills", sa.JSON(), nullable=True))
    op.create_table(
        "work_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("subcategory", sa.String(length=64), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("settled_at_once", sa.Boolean(), nullable=False),
        sa.Column("citizen_phone", sa.String(length=64), nullable=False),
        sa.Column("case_number", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("call_id", sa.String(length=128), nullable=True),
        sa.Column("transcript", sa.JSON(), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("auto_key", sa.String(length=160), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("callback_due", sa.Date(), nullable=True),
        sa.CheckConstraint("category IN ('consult', 'query', 'urge', 'contact_judge', 'complaint', 'suggestion')",
                           name=op.f("ck_work_orders_category")),
        sa.CheckConstraint("channel IN ('hotline', 'web', 'walk_in', 'letter')", name=op.f("ck_work_orders_channel")),
        sa.CheckConstraint("status IN ('received', 'closed')", name=op.f("ck_work_orders_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_orders")),
        sa.UniqueConstraint("number", name=op.f("uq_work_orders_number")),
        sa.UniqueConstraint("auto_key", name=op.f("uq_work_orders_auto_key")),
    )
    op.create_index(op.f("ix_work_orders_call_id"), "work_orders", ["call_id"], unique=False)
    op.create_index(op.f("ix_work_orders_created_at"), "work_orders", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_work_orders_created_at"), table_name="work_orders")
    op.drop_index(op.f("ix_work_orders_call_id"), table_name="work_orders")
    op.drop_table("work_orders")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("skills")
