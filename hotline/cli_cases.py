"""``hotline cases``: the demo case store — import, list, show (show asks the configured case system)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from court_cases.backend import open_case_system
from court_cases.case import Stage
from court_cases.demo import apply_import, count_cases, list_cases, to_info
from court_cases.io import CaseImportError, read_file
from court_cases.spoken import status_sentence
from court_cases.system import CaseSystemUnavailable
from hotline.cli_db import ConfigOption, fail, load, open_session
from hotline.cli_kb import _Bar, _progress, cli_user, rejected
from hotline.db import make_engine, session_factory, upgrade_engine

cases_app = typer.Typer(help="Court cases for self-service by phone: the demo store (import, list) and lookups.",
                        no_args_is_help=True)

StageOpt = Enum("StageOpt", {s.value: s.value for s in Stage}, type=str)  # type: ignore[misc]


@cases_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A .json or .csv (UTF-8) file of cases; columns in "
                                         "court_cases/io.py and the README.", dir_okay=False)],
    replace: Annotated[bool, typer.Option("--replace", help="Replace the whole demo store (cases not in FILE are "
                                          "deleted), in one transaction.")] = False,
    config: ConfigOption = None,
) -> None:
    """Import cases into the demo store: everything is validated first; any error imports nothing, names each
    row and field, and exits with code 2.

    Without --replace, cases are added or updated by case number; the others stay. 查询密码 and ID digits are
    stored as salted hashes only.
    """
    settings = load(config)
    progress = _progress()  # started by the first large step only
    try:
        try:
            rows = read_file(file, tz=settings.hub.timezone, progress=_Bar(progress, "校验 / validating"))
        except CaseImportError as e:
            raise rejected(e, file, "案件库") from None
        with open_session(config) as db:
            try:
                result = apply_import(db, rows, cli_user(), source=str(file), replace=replace,
                                      progress=_Bar(progress, "写入 / hashing, writing"))
                db.commit()
            except CaseImportError as e:
                db.rollback()
                raise rejected(e, file, "案件库") from None
            except SQLAlchemyError as e:
                db.rollback()
                raise fail(f"import failed, nothing changed: {e}") from None
    finally:
        if progress.live.is_started:
            progress.stop()
    s = result.summary()
    typer.echo(f"imported {file}: {s['total']} cases — {s['created']} created, {s['updated']} updated, "
               f"{s['unchanged']} unchanged" + (f", {s['deleted']} deleted" if replace else ""))
    if settings.cases.backend != "demo":
        typer.secho("note: cases.backend is 'http'; calls are answered by the court's system, not this store",
                    err=True, fg=typer.colors.YELLOW)


@cases_app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line (party names included).")] = False,
    stage: Annotated[StageOpt | None, typer.Option("--stage", help="Only cases at this stage.")] = None,
    query: Annotated[str | None, typer.Option("--search", "-q", help="Case number, cause, judge or department "
                                              "containing this text.")] = None,
    config: ConfigOption = None,
) -> None:
    """List the demo store's cases, ordered by case number (times in the court's time zone)."""
    tz = ZoneInfo(load(config).hub.timezone)
    with open_session(config) as db:
        records = list_cases(db, stage=stage.value if stage else None, q=query)
        infos = [to_info(r) for r in records]
        total = count_cases(db)
    if as_json:
        for info in infos:
            typer.echo(info.model_dump_json())
        return
    if not infos:
        typer.echo("no cases" + ("" if stage or query or total else "; import some with: hotline cases import FILE"))
        return
    out = Console(file=sys.stdout, soft_wrap=True, highlight=False)
    for i in infos:
        hearing = i.next_hearing.at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if i.next_hearing else ""
        out.print(f"{i.case_number:<24} {i.lookup_number or '':<10} {i.stage.label:<4} {i.cause:<14} "
                  f"{i.judge:<4} {i.department:<6} {hearing}", markup=False)
    typer.echo(f"{len(infos)} cases")


@cases_app.command("show")
def show_cmd(
    number: Annotated[str, typer.Argument(metavar="NUMBER", help="Case number in any form (（2023）粤0305民初1234号, "
                                          "2023*440305*1*1234) or a lookup number.")],
    as_json: Annotated[bool, typer.Option("--json", help="The case as JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Show one case as the configured case system (demo store or HTTP) returns it, with its status sentence."""
    settings = load(config)
    engine = make_engine(settings.db_url)
    system = None
    try:
        try:
            upgrade_engine(engine)
        except SQLAlchemyError as e:
            raise fail(f"cannot open database: {e}") from None
        system = open_case_system(settings.cases, session_factory(engine), tz=settings.hub.timezone)
        try:
            case = system.get_case(number)
        except CaseSystemUnavailable as e:
            raise fail(f"case system unavailable: {e}") from None
    finally:
        if system is not None:
            system.close()
        engine.dispose()
    if case is None:
        raise fail(f"no case {number!r} (not found, or not a case or lookup number)")
    sentence = status_sentence(case, now=datetime.now(UTC), tz=settings.hub.timezone)
    tz = ZoneInfo(settings.hub.timezone)
    if as_json:
        doc: dict[str, Any] = case.model_dump(mode="json")
        doc["status_sentence"] = sentence
        typer.echo(json.dumps(doc, ensure_ascii=False, indent=1))
        return
    out = Console(file=sys.stdout, soft_wrap=True, highlight=False)
    hearing = case.next_hearing
    rows = [("案号", case.case_number), ("查询号", case.lookup_number or ""), ("案由", case.cause),
            ("当事人", "，".join(f"{p.role} {p.name}" for p in case.parties)), ("阶段", case.stage.label),
            ("下次开庭", f"{hearing.at.astimezone(tz):%Y-%m-%d %H:%M} {hearing.place}" if hearing else ""),
            ("承办法官", case.judge), ("书记员", case.clerk), ("部门", case.department),
            ("法官团队电话", case.judge_team_line or ""), ("执行情况", case.enforcement_status or ""),
            ("退费情况", case.refund_status or ""), ("更新时间", f"{case.updated_at.astimezone(tz):%Y-%m-%d %H:%M}"),
            ("语音播报", sentence)]
    for k, v in rows:
        if v:
            out.print(f"{k}：{v}", markup=False)
