"""``hotline users``: console accounts."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated

import typer

from agent_console.auth.users import (
    UnknownUser,
    UserError,
    UserExists,
    create_user,
    list_users,
    set_active,
    set_password,
)
from agent_console.models import ROLES
from hotline.cli_db import ConfigOption, fail, open_session

users_app = typer.Typer(help="Manage console users.", no_args_is_help=True)

Role = Enum("Role", {r: r for r in ROLES}, type=str)  # type: ignore[misc]

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Login name (letters, digits, _ . @ -).")]
PasswordOption = Annotated[
    str | None,
    typer.Option("--password", "-p", help="The password (prompted twice when omitted)."),
]


def _password(given: str | None) -> str:
    if given is not None:
        return given
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


def _user_error(e: UserError) -> typer.Exit:
    return fail(str(e), 1 if isinstance(e, UserExists | UnknownUser) else 2)


@users_app.command("add")
def add(name: NameArg,
        role: Annotated[Role, typer.Option("--role", "-r", help="operator, supervisor, admin or handler.")],
        password: PasswordOption = None,
        display_name: Annotated[str, typer.Option(help="Name shown in the console.")] = "",
        sip_uri: Annotated[str | None, typer.Option(help="The operator's SIP phone, sip:...")] = None,
        skills: Annotated[str, typer.Option(help="Work-order categories the operator takes calls for, comma "
                                                 "separated (consult,query,urge,contact_judge,complaint,"
                                                 "suggestion); empty = all.")] = "",
        config: ConfigOption = None) -> None:
    """Add a console user."""
    with open_session(config) as db:
        try:
            create_user(db, name, role.value, _password(password), display_name=display_name, sip_uri=sip_uri,
                        skills=[s.strip() for s in skills.split(",") if s.strip()])
        except UserError as e:
            raise _user_error(e) from None
        db.commit()
    typer.echo(f"added user {name} ({role.value})")


@users_app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
             config: ConfigOption = None) -> None:
    """List console users."""
    with open_session(config) as db:
        users = list_users(db)
    if as_json:
        for u in users:
            typer.echo(json.dumps({"username": u.username, "role": u.role, "display_name": u.display_name,
                                   "sip_uri": u.sip_uri, "skills": u.skills or [],
                                   "active": u.active,
                                   "created_at": u.created_at.isoformat()}, ensure_ascii=False))
        return
    if not users:
        typer.echo("no users; add one with: hotline users add NAME --role admin")
        return
    typer.echo(f"{'USERNAME':<20} {'ROLE':<11} {'ACTIVE':<7} {'CREATED (UTC)':<17} DISPLAY NAME")
    for u in users:
        typer.echo(f"{u.username:<20} {u.role:<11} {'yes' if u.active else 'no':<7} "
                   f"{u.created_at:%Y-%m-%d %H:%M} {u.display_name}")


@users_app.command("passwd")
def passwd(name: NameArg, password: PasswordOption = None, config: ConfigOption = None) -> None:
    """Set a user's password (ends the user's login sessions)."""
    with open_session(config) as db:
        try:
            set_password(db, name, _password(password))
        except UserError as e:
            raise _user_error(e) from None
        db.commit()
    typer.echo(f"password of {name} changed")


@users_app.command("disable")
def disable(name: NameArg, config: ConfigOption = None) -> None:
    """Disable a user: no more logins, current sessions end."""
    with open_session(config) as db:
        try:
            set_active(db, name, False)
        except UserError as e:
            raise _user_error(e) from None
        db.commit()
    typer.echo(f"disabled user {name}")


@users_app.command("enable")
def enable(name: NameArg, config: ConfigOption = None) -> None:
    """Enable a disabled user again."""
    with open_session(config) as db:
        try:
            set_active(db, name, True)
        except UserError as e:
            raise _user_error(e) from None
        db.commit()
    typer.echo(f"enabled user {name}")
