"""work_orders: repeat_count (重复来电) and summary (the call summary); work_order_contacts (later calls that joined
an open order); indexes on citizen_phone and case_number (finding the open order of a repeat caller)

Columns are added with ALTER TABLE, not a batch copy: the dashboard's triggers on work_orders (0007) stay.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from knowledge_base.db_types import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("work_orders", sa.Column("repeat_count", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("work_orders", sa.Column("summary", sa.Text(), nullable=False, server_default=""))
    op.create_index(op.f("ix_work_orders_citizen_phone"), "work_orders", ["citizen_phone"], unique=False)
    op.create_index(op.f("ix_work_orders_case_number"), "work_orders", ["case_number"], unique=False)
    op.create_table(
        "work_order_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=128), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("matched_by", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["work_orders.id"],
                                name=op.f("fk_work_order_contacts_order_id_work_orders"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_contacts")),
        sa.UniqueConstraint("call_id", name=op.f("uq_work_order_contacts_call_id")),
    )
    op.create_index(op.f("ix_work_order_contacts_order_id"), "work_order_contacts", ["order_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_work_order_contacts_order_id"), table_name="work_order_contacts")
    op.drop_table("work_order_contacts")
    op.drop_index(op.f("ix_work_orders_case_number"), table_name="work_orders")
    op.drop_index(op.f("ix_work_orders_citizen_phone"), table_name="work_orders")
    op.drop_column("work_orders", "summary")
    op.drop_column("work_orders", "repeat_count")
