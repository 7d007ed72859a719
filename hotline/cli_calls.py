"""``hotline calls``: call records."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from agent_console.calls.records import MAX_LIMIT, CallOut, latest_calls
from hotline.cli_db import ConfigOption, open_session

calls_app = typer.Typer(help="Call records.", no_args_is_help=True)


@calls_app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
             limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=MAX_LIMIT,
                                                help="How many calls.")] = 20,
             config: ConfigOption = None) -> None:
    """Show the latest call records, newest first."""
    with open_session(config) as db:
        calls = [CallOut.model_validate(c) for c in latest_calls(db, limit)]
    if as_json:
        for c in calls:
            typer.echo(json.dumps(c.model_dump(mode="json"), ensure_ascii=False))
        return
    if not calls:
        typer.echo("no calls yet")
        return
    typer.echo(f"{'OFFERED (UTC)':<19} {'STATUS':<8} {'CALLER':<16} {'CALLEE':<10} {'WORKER':<10} "
               f"{'END':<16} {'DIGITS':<8} PATH")
    for c in calls:
        offered = f"{c.offered_at:%Y-%m-%d %H:%M:%S}" if c.offered_at else "-"
        end = f"{c.end_cause or '-'}/{c.end_side or '-'}" if c.ended_at else "-"
        typer.echo(f"{offered:<19} {c.status:<8} {c.caller[:16]:<16} {c.callee[:10]:<10} {c.worker[:10]:<10} "
                   f"{end[:16]:<16} {c.digits[:8] or '-':<8} {' > '.join(c.menu_path) or '-'}")
