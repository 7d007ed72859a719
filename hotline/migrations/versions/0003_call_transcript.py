"""calls: transcript (final utterances) and handoff_reason (agent_console)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("transcript", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("handoff_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("handoff_reason")
        batch.drop_column("transcript")
