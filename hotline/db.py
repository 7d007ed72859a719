"""Database wiring: engine, sessions and Alembic migrations run from code.

Every package owns its tables (its own ``MetaData``); ``hotline/migrations`` holds one Alembic
history over all of them. No ``alembic.ini`` is needed: :func:`alembic_config` builds the config.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from hotline.settings import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000


class DatabaseUnavailable(Exception):
    """The configured database cannot be opened or migrated; the message names the setting and the URL."""


def safe_url(url: str) -> str:
    """``url`` with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "(not a database URL)"


def open_migrated(url: str) -> Engine:
    """An engine on ``url`` with the database brought to the newest migration; a wrong URL, a server that does
    not answer or a missing driver raise :class:`DatabaseUnavailable` naming ``database_url``."""
    try:
        engine = make_engine(url)
    except (SQLAlchemyError, ImportError) as e:
        raise DatabaseUnavailable(f"database_url (HOTLINE_DATABASE_URL) {safe_url(url)}: {e}") from None
    try:
        upgrade_engine(engine)
    except SQLAlchemyError as e:
        engine.dispose()
        reason = str(e.orig if getattr(e, "orig", None) is not None else e).strip().splitlines()[0]
        raise DatabaseUnavailable(f"database_url (HOTLINE_DATABASE_URL) {safe_url(url)}: {reason}") from None
    return engine


def metadatas() -> list[MetaData]:
    """The metadata of every package that owns tables, in dependency order."""
    from agent_console.models import Base as ConsoleBase
    from court_cases.models import Base as CasesBase
    from knowledge_base.models import Base as KbBase
    from work_orders.models import Base as WorkOrdersBase

    return [ConsoleBase.metadata, WorkOrdersBase.metadata, KbBase.metadata, CasesBase.metadata]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
    finally:
        cur.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite files get WAL, foreign keys and a busy timeout.

    Other URLs (PostgreSQL) are passed to SQLAlchemy unchanged.
    """
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:" and not u.database.startswith("file:"):
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = create_engine(u, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(u, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine | None = None, url: str | None = None) -> Config:
    """An Alembic config pointing at the bundled migrations (no ini file)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the database of ``settings`` to ``revision`` (default: the newest)."""
    engine = make_engine(settings.db_url)
    try:
        upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
