"""The ``hotline`` command."""

from __future__ import annotations

import typer

from hotline.cli_calls import calls_app
from hotline.cli_db import db_app
from hotline.cli_users import users_app

app = typer.Typer(help="12368 litigation-service voice hotline.", no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]})
app.add_typer(users_app, name="users")
app.add_typer(calls_app, name="calls")
app.add_typer(db_app, name="db")
