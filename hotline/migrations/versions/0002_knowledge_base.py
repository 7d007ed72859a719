"""knowledge base: kb_entries, kb_history, kb_revision (knowledge_base)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
CATEGORIES = ("consult", "query", "urge", "contact_judge", "complaint", "suggestion")
ACTIONS = ("create", "update", "enable", "disable", "delete", "import")


def upgrade() -> None:
    op.create_table(
        "kb_entries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("variants", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("keywords", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint(f"category IN {CATEGORIES!r}", name=op.f("ck_kb_entries_category")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_entries")),
    )
    op.create_index(op.f("ix_kb_entries_category"), "kb_entries", ["category"], unique=False)

    op.create_table(
        "kb_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("who", sa.String(length=64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.CheckConstraint(f"action IN {ACTIONS!r}", name=op.f("ck_kb_history_action")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_history")),
        sa.UniqueConstraint("entry_id", "version", name="uq_kb_history_entry_id_version"),
    )
    op.create_index(op.f("ix_kb_history_entry_id"), "kb_history", ["entry_id"], unique=False)
    op.create_index(op.f("ix_kb_history_at"), "kb_history", ["at"], unique=False)

    op.create_table(
        "kb_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_revision")),
    )
    op.execute("INSERT INTO kb_revision (id, revision, changed_at) VALUES (1, 0, CURRENT_TIMESTAMP)")


def downgrade() -> None:
    op.drop_table("kb_revision")
    op.drop_index(op.f("ix_kb_history_at"), table_name="kb_history")
    op.drop_index(op.f("ix_kb_history_entry_id"), table_name="kb_history")
    op.drop_table("kb_history")
    op.drop_index(op.f("ix_kb_entries_category"), table_name="kb_entries")
    op.drop_table("kb_entries")
