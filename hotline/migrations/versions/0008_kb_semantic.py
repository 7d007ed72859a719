"""kb_entries: title (short spoken title, made from the question for existing rows), embedding and
embedding_model (the entry's text vectors and the model that made them; recomputed when it differs)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from knowledge_base.title import make_title

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kb_entries") as batch:
        batch.add_column(sa.Column("title", sa.String(16), nullable=False, server_default=""))
        batch.add_column(sa.Column("embedding", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("embedding_model", sa.String(64), nullable=True))
    bind = op.get_bind()
    entries = sa.table("kb_entries", sa.column("id", sa.String), sa.column("question", sa.Text),
                       sa.column("title", sa.String))
    for entry_id, question in bind.execute(sa.select(entries.c.id, entries.c.question)).all():
        bind.execute(entries.update().where(entries.c.id == entry_id).values(title=make_title(question)))


def downgrade() -> None:
    with op.batch_alter_table("kb_entries") as batch:
        batch.drop_column("embedding_model")
        batch.drop_column("embedding")
        batch.drop_column("title")
