"""court cases: cases, case_parties, case_imports, case_verify_attempts (court_cases)

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
STAGES = ("filed", "in_trial", "heard", "judged", "enforcement", "suspended", "closed")
RESULTS = ("ok", "wrong", "locked", "unavailable")


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("lookup_number", sa.String(length=16), nullable=True),
        sa.Column("cause", sa.String(length=100), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("hearing_at", TS, nullable=True),
        sa.Column("hearing_place", sa.String(length=64), nullable=False),
        sa.Column("judge", sa.String(length=32), nullable=False),
        sa.Column("clerk", sa.String(length=32), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("judge_team_line", sa.String(length=128), nullable=True),
        sa.Column("enforcement_status", sa.String(length=200), nullable=True),
        sa.Column("refund_status", sa.String(length=200), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("secret_salt", sa.String(length=32), nullable=False),
        sa.Column("password_hash", sa.String(length=128), nullable=True),
        sa.Column("imported_at", TS, nullable=False),
        sa.Column("imported_by", sa.String(length=64), nullable=False),
        sa.CheckConstraint(f"stage IN {STAGES!r}", name=op.f("ck_cases_stage")),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_cases")),
        sa.UniqueConstraint("lookup_number", name=op.f("uq_cases_lookup_number")),
    )
    op.create_index(op.f("ix_cases_stage"), "cases", ["stage"], unique=False)

    op.create_table(
        "case_parties",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_number", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("id_hash", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(["case_number"], ["cases.number"], name=op.f("fk_case_parties_case_number_cases"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_parties")),
        sa.UniqueConstraint("case_number", "position", name="uq_case_parties_case_number_position"),
    )

    op.create_table(
        "case_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("who", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("replace", sa.Boolean(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_imports")),
    )

    op.create_table(
        "case_verify_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("caller", sa.String(length=64), nullable=False),
        sa.Column("case_number", sa.String(length=64), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("call_id", sa.String(length=128), nullable=True),
        sa.CheckConstraint(f"result IN {RESULTS!r}", name=op.f("ck_case_verify_attempts_result")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_verify_attempts")),
    )
    op.create_index("ix_case_verify_attempts_case_number_at", "case_verify_attempts", ["case_number", "at"],
                    unique=False)
    op.create_index("ix_case_verify_attempts_caller_at", "case_verify_attempts", ["caller", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_case_verify_attempts_caller_at", table_name="case_verify_attempts")
    op.drop_index("ix_case_verify_attempts_case_number_at", table_name="case_verify_attempts")
    op.drop_table("case_verify_attempts")
    op.drop_table("case_imports")
    op.drop_table("case_parties")
    op.drop_index(op.f("ix_cases_stage"), table_name="cases")
    op.drop_table("cases")
