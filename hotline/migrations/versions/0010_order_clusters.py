"""work_order_vectors (an order's sentence vector for the 类案 analysis) and work_order_known_issues (clusters
marked as known issues, with a note)

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from knowledge_base.db_types import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "work_order_vectors",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["work_orders.id"],
                                name=op.f("fk_work_order_vectors_order_id_work_orders"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_work_order_vectors")),
    )
    op.create_table(
        "work_order_known_issues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_known_issues")),
    )


def downgrade() -> None:
    op.drop_table("work_order_known_issues")
    op.drop_table("work_order_vectors")
