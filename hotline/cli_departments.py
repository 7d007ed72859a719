"""``hotline departments``: where work orders are dispatched (departments, judges' teams) and their handlers."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from sqlalchemy import select

from agent_console.work_orders.departments import DepartmentError, add_department, members_of, set_members
from hotline.cli_db import ConfigOption, fail, load, open_session
from work_orders.models import Department

departments_app = typer.Typer(help="Departments and judges' teams that work orders are dispatched to.",
                              no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="e.g. 民一庭, or 民一庭王明法官团队.")]
MembersArg = Annotated[list[str] | None, typer.Argument(metavar="HANDLER...", help="Handler accounts.")]


@departments_app.command("add")
def add(name: NameArg,
        kind: Annotated[str, typer.Option(help="department or judge_team.")] = "department",
        members: MembersArg = None, config: ConfigOption = None) -> None:
    """Add a department or judge's team, optionally with its handlers."""
    reserved = load(config).work_orders.supervision_team
    with open_session(config) as db:
        try:
            d = add_department(db, name, kind, reserved=reserved)
            if members:
                set_members(db, d, members)
        except DepartmentError as e:
            raise fail(str(e), 1) from None
        db.commit()
    typer.echo(f"added {kind} {name}" + (f" with {', '.join(members)}" if members else ""))


@departments_app.command("members")
def members(name: NameArg, handlers: MembersArg = None, config: ConfigOption = None) -> None:
    """Set the handlers of a department (replacing the previous ones; none = clear)."""
    with open_session(config) as db:
        d = db.scalar(select(Department).where(Department.name == name))
        if d is None:
            raise fail(f"no department {name}", 1)
        try:
            now = set_members(db, d, handlers or [])
        except DepartmentError as e:
            raise fail(str(e), 1) from None
        db.commit()
    typer.echo(f"{name}: {', '.join(now) or '(no handlers)'}")


@departments_app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
             config: ConfigOption = None) -> None:
    """List departments and judges' teams with their handlers."""
    with open_session(config) as db:
        rows = list(db.scalars(select(Department).order_by(Department.kind, Department.name)))
        members = members_of(db)
    for d in rows:
        m = members.get(d.name, [])
        if as_json:
            typer.echo(json.dumps({"name": d.name, "kind": d.kind, "active": d.active, "members": m},
                                  ensure_ascii=False))
        else:
            typer.echo(f"{d.name}\t{d.kind}\t{'active' if d.active else 'inactive'}\t{', '.join(m)}")
