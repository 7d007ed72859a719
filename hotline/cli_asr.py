"""``hotline asr``: recognize WAV files with the configured models (one JSON line per file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from hotline.cli_models import ConfigOption, _settings

asr_app = typer.Typer(help="Speech recognition.", no_args_is_help=True)


@asr_app.command("transcribe")
def transcribe(
    files: Annotated[list[Path], typer.Argument(help="WAV files: mono PCM16, μ-law or A-law, 8 or 16 kHz")],
    engine: Annotated[str | None, typer.Option(help="whisper or vosk (default: asr.engine)")] = None,
    config: ConfigOption = None,
) -> None:
    """Print {"file", "text", "audio_s", "decode_s", "engine"} per file; a bad file gets {"file", "error"}."""
    from asr.audio import read_wav
    from asr.errors import AsrError

    s = _settings(config)
    name: Literal["whisper", "vosk"] = engine or s.asr.engine  # type: ignore[assignment]
    if name not in ("whisper", "vosk"):
        raise typer.BadParameter("use whisper or vosk", param_hint="--engine")
    try:
        if name == "whisper":
            from asr.whisper_engine import WhisperEngine

            rec = WhisperEngine(s.asr.whisper_dir(s.home), s.asr)
        else:
            from asr.vosk_engine import VoskEngine

            if s.asr.vosk_model_dir is None:
                typer.secho("error: --engine vosk needs asr.vosk_model_dir (HOTLINE_ASR__VOSK_MODEL_DIR)",
                            err=True, fg="red")
                raise typer.Exit(2)
            rec = VoskEngine(s.asr.vosk_model_dir, s.asr.vosk_grammar)
    except AsrError as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        raise typer.Exit(2) from None
    failed = 0
    for f in files:
        try:
            pcm, rate = read_wav(f)
            tr = rec.transcribe(pcm, rate)
            line = {"file": str(f), "text": tr.text, "audio_s": round(tr.audio_s, 3),
                    "decode_s": round(tr.decode_s, 3), "engine": name}
        except AsrError as e:
            failed += 1
            line = {"file": str(f), "error": str(e), "engine": name}
        typer.echo(json.dumps(line, ensure_ascii=False))
    raise typer.Exit(1 if failed else 0)
