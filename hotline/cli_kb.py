"""``hotline kb``: the FAQ knowledge base — import, export, list.

``hotline kb ask`` (the matcher) lives in ``hotline/cli_kb_ask.py`` and is registered at the end of this file.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.exc import SQLAlchemyError

from hotline.cli_db import ConfigOption, fail, load, open_session
from knowledge_base.embedding import EmbeddingModelError, get_embedder
from knowledge_base.entry import CATEGORIES
from knowledge_base.io import KbImportError, export_bytes, format_of, read_file
from knowledge_base.store import KbError, apply_import, list_entries
from table_import import ImportRejected

kb_app = typer.Typer(help="FAQ knowledge base: import, export, list.", no_args_is_help=True)

Category = Enum("Category", {c: c for c in CATEGORIES}, type=str)  # type: ignore[misc]
#: a progress bar is shown from this many entries on
LARGE = 1000


def cli_user() -> str:
    """Who a CLI change is recorded as in the KB history."""
    try:
        name = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        name = os.environ.get("USER", "")
    return f"cli:{name}"[:64] if name else "cli"


class _Bar:
    """A rich progress bar that appears only once the total reaches :data:`LARGE` (on stderr)."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress, self.label = progress, label
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if total < LARGE:
            return
        if self.task is None:
            if not self.progress.live.is_started:
                self.progress.start()
            self.task = self.progress.add_task(self.label, total=total)
        self.progress.update(self.task, completed=done, total=total)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)


def rejected(e: ImportRejected, file: Path, store: str = "知识库") -> typer.Exit:
    """Print a rejected import's problems (row and field each) and exit 2: bad input, nothing changed."""
    typer.secho(f"error: 导入被拒绝，{store}未做任何更改（{file}，{e.total} 处错误）：", err=True, fg=typer.colors.RED)
    for line in str(e).splitlines():
        typer.echo(f"  {line}", err=True)
    return typer.Exit(2)


@kb_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A .json, .csv (UTF-8) or .xlsx file of FAQ entries.",
                                         dir_okay=False)],
    replace: Annotated[bool, typer.Option("--replace", help="Replace the whole KB (entries not in FILE are "
                                          "deleted), in one transaction.")] = False,
    config: ConfigOption = None,
) -> None:
    """Import FAQ entries: everything is validated first; any error imports nothing and names row and field.

    Without --replace, entries are added or updated by id; the others stay.
    """
    progress = _progress()  # started by the first large step only
    try:
        try:
            entries = read_file(file, _Bar(progress, "校验 / validating"))
        except KbImportError as e:
            raise rejected(e, file) from None
        try:  # the vectors are computed here, with the import, not by the hub's next rebuild
            embedder = get_embedder() if load(config).kb.semantic else None
        except EmbeddingModelError as e:
            raise fail(str(e)) from None
        with open_session(config) as db:
            try:
                result = apply_import(db, entries, cli_user(), replace=replace,
                                      progress=_Bar(progress, "写入 / writing"), embedder=embedder)
                db.commit()
            except (KbError, SQLAlchemyError) as e:
                db.rollback()
                raise fail(f"import failed, nothing changed: {e}") from None
    finally:
        if progress.live.is_started:
            progress.stop()
    s = result.summary()
    typer.echo(f"imported {file}: {s['total']} entries — {s['created']} created, {s['updated']} updated, "
               f"{s['unchanged']} unchanged" + (f", {s['deleted']} deleted" if replace else ""))


@kb_app.command("export")
def export_cmd(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Where to write; the format comes from the "
                                         "extension: .json, .csv or .xlsx.", dir_okay=False)],
    category: Annotated[Category | None, typer.Option("--category", help="Only this category.")] = None,
    config: ConfigOption = None,
) -> None:
    """Export the FAQ entries (enabled and disabled) to FILE; `hotline kb import` reads it back unchanged."""
    try:
        fmt = format_of(file)
    except KbImportError as e:
        raise fail(str(e), 2) from None
    with open_session(config) as db:
        data = export_bytes(db, fmt, category=category.value if category else None)
        count = len(list_entries(db, category=category.value if category else None))
    tmp = file.with_name(f".{file.name}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(file)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise fail(f"cannot write {file}: {e.strerror or e}") from None
    typer.echo(f"exported {count} entries to {file}")


@kb_app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    category: Annotated[Category | None, typer.Option("--category", help="Only this category.")] = None,
    query: Annotated[str | None, typer.Option("--search", "-q", help="Only entries containing these words.")] = None,
    config: ConfigOption = None,
) -> None:
    """List FAQ entries, ordered by id."""
    with open_session(config) as db:
        entries = list_entries(db, q=query, category=category.value if category else None)
    if as_json:
        for e in entries:
            typer.echo(json.dumps({"id": e.id, "category": e.category, "question": e.question,
                                   "variants": e.variants, "answer": e.answer, "keywords": e.keywords,
                                   "enabled": e.enabled, "version": e.version, "updated_by": e.updated_by,
                                   "updated_at": e.updated_at.isoformat()}, ensure_ascii=False))
        return
    if not entries:
        typer.echo("no entries" + ("" if query or category else "; import some with: hotline kb import FILE"))
        return
    out = Console(file=sys.stdout, soft_wrap=True, highlight=False)
    for e in entries:
        mark = "" if e.enabled else " [disabled]"
        out.print(f"{e.id:<10} {e.category:<13} v{e.version:<4} {e.question}{mark}", markup=False)
    typer.echo(f"{len(entries)} entries")


from hotline.cli_kb_ask import ask  # noqa: E402 - the matcher's command, in a module of its own

kb_app.command("ask")(ask)
