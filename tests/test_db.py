"""Migrations on a real SQLite file and a real PostgreSQL database: schema, idempotence, pragmas, models in step
with migrations, downgrade to empty and back, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from agent_console.models import User
from hotline.db import (
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    metadatas,
    session_factory,
    upgrade,
    upgrade_engine,
)
from hotline.settings import load_settings

TABLES = {"users", "sessions", "calls", "call_events"}


def test_upgrade_creates_schema_and_is_idempotent(tmp_path, db_backend, db_url):
    cfg = tmp_path / "hotline.toml"
    url_line = f'database_url = "{db_url}"\n' if db_backend == "postgresql" else ""
    cfg.write_text(f'home = "{tmp_path / "home"}"\n{url_line}')
    settings = load_settings(cfg)
    upgrade(settings)
    if db_backend == "sqlite":
        assert (tmp_path / "home" / "hotline.db").exists()
    upgrade(settings)  # second run: nothing to do, no error
    engine = make_engine(settings.db_url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(context, metadatas())
        assert diffs == [], f"models and migrations differ: {diffs}"
    finally:
        engine.dispose()


def test_sqlite_pragmas(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    finally:
        engine.dispose()


def test_downgrade_and_upgrade_again(db_url):
    engine = make_engine(db_url)
    try:
        upgrade_engine(engine)
        command.downgrade(alembic_config(engine), "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        upgrade_engine(engine)
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_timestamps_come_back_aware_utc(db_url):
    engine = make_engine(db_url)
    try:
        upgrade_engine(engine)
        beijing = timezone(timedelta(hours=8))
        created = datetime(2026, 3, 1, 9, 30, tzinfo=beijing)
        with session_factory(engine)() as db:
            db.add(User(username="u", password_hash="x", role="operator", created_at=created))
            db.commit()
        with session_factory(engine)() as db:
            got = db.query(User).one().created_at
        assert got == created and got.tzinfo is not None and got.utcoffset() == timedelta(0)
        assert got == datetime(2026, 3, 1, 1, 30, tzinfo=UTC)
    finally:
        engine.dispose()
