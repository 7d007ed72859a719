"""initial schema: users, sessions, calls, call_events (agent_console)

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("display_name", sa.String(length=128), nullable=False),
        sa.Column("sip_uri", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("role IN ('operator', 'supervisor', 'admin', 'handler')",
                           name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_sessions_token_hash")),
    )
    op.create_index(op.f("ix_sessions_user_id"), "sessions", ["user_id"], unique=False)

    op.create_table(
        "calls",
        sa.Column("call_id", sa.String(length=128), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("caller", sa.Text(), nullable=False),
        sa.Column("callee", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("sip_call_id", sa.Text(), nullable=False),
        sa.Column("worker", sa.String(length=128), nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("offered_at", TS, nullable=True),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("end_cause", sa.Text(), nullable=True),
        sa.Column("end_side", sa.String(length=16), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("menu_path", sa.JSON(), nullable=False),
        sa.Column("digits", sa.Text(), nullable=False),
        sa.Column("prompts", sa.JSON(), nullable=False),
        sa.Column("media", sa.JSON(), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("status IN ('offered', 'answered', 'rejected', 'ended')",
                           name=op.f("ck_calls_status")),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_calls")),
    )
    op.create_index(op.f("ix_calls_started_at"), "calls", ["started_at"], unique=False)
    op.create_index("ix_calls_worker_status", "calls", ["worker", "status"], unique=False)

    op.create_table(
        "call_events",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("call_id", sa.String(length=128), nullable=True),
        sa.Column("worker", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_call_events")),
    )
    op.create_index(op.f("ix_call_events_call_id"), "call_events", ["call_id"], unique=False)
    op.create_index(op.f("ix_call_events_worker"), "call_events", ["worker"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_call_events_worker"), table_name="call_events")
    op.drop_index(op.f("ix_call_events_call_id"), table_name="call_events")
    op.drop_table("call_events")
    op.drop_index("ix_calls_worker_status", table_name="calls")
    op.drop_index(op.f("ix_calls_started_at"), table_name="calls")
    op.drop_table("calls")
    op.drop_index(op.f("ix_sessions_user_id"), table_name="sessions")
    op.drop_table("sessions")
    op.drop_table("users")
