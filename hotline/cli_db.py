"""``hotline db``: database migrations; also the settings/session helpers of the other commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from hotline.db import current_revision, head_revision, make_engine, session_factory, upgrade_engine
from hotline.settings import Settings, SettingsError, load_settings

db_app = typer.Typer(help="Database schema and migrations.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Settings TOML file (default: $HOTLINE_CONFIG, else ./hotline.toml).",
                 dir_okay=False),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def load(config: Path | None) -> Settings:
    """Settings for a command; a bad setting ends it with exit code 2, naming file, line and key."""
    try:
        return load_settings(config)
    except SettingsError as e:
        typer.secho(f"Invalid settings:\n{e}", err=True, fg="red")
        raise typer.Exit(2) from None


def safe_url(settings: Settings) -> str:
    return make_url(settings.db_url).render_as_string(hide_password=True)


@contextmanager
def open_session(config: Path | None) -> Iterator[Session]:
    """A session on the migrated database of the settings named by ``config``."""
    settings = load(config)
    engine = make_engine(settings.db_url)
    try:
        try:
            upgrade_engine(engine)
        except SQLAlchemyError as e:
            raise fail(f"cannot open database {safe_url(settings)}: {e}") from None
        with session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


@db_app.command("upgrade")
def upgrade_cmd(config: ConfigOption = None,
                revision: Annotated[str, typer.Option(help="Target revision.")] = "head") -> None:
    """Apply the database migrations (to the newest revision by default)."""
    settings = load(config)
    engine = make_engine(settings.db_url)
    try:
        upgrade_engine(engine, revision)
        typer.echo(f"database {safe_url(settings)} at revision {current_revision(engine)}")
    except SQLAlchemyError as e:
        raise fail(f"cannot migrate {safe_url(settings)}: {e}") from None
    finally:
        engine.dispose()


@db_app.command("current")
def current_cmd(config: ConfigOption = None) -> None:
    """Show the database's revision and the newest one this version ships."""
    settings = load(config)
    engine = make_engine(settings.db_url)
    try:
        typer.echo(f"database {safe_url(settings)}: revision {current_revision(engine) or '(empty)'}, "
                   f"newest {head_revision()}")
    except SQLAlchemyError as e:
        raise fail(f"cannot read {safe_url(settings)}: {e}") from None
    finally:
        engine.dispose()
