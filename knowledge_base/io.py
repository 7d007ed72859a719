"""Import and export of FAQ entries: JSON, CSV and XLSX, and the default KB loaded on first start.

- JSON: a list of objects with exactly :class:`~knowledge_base.entry.FaqEntry`'s keys (``variants`` and
  ``keywords`` may be left out; any other key is an error).
- CSV (UTF-8, a BOM is allowed and written) and XLSX (the first sheet): a header row naming the same
  columns (any order; ``variants``/``keywords`` may be left out), one entry per row. List cells hold the
  items separated by ``|``; an item containing ``|`` or ``\\`` writes them as ``\\|`` and ``\\\\``, so an
  export reads back exactly.

Reading validates everything before anything is stored: :func:`read_entries` either returns every entry
or raises :class:`KbImportError` listing the problems, each naming the row (as a person counts: for
CSV/XLSX the header is row 1, the first entry row 2; for JSON the first object is 第1条) and the field.
Messages are Simplified Chinese (they reach operators).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

import table_import
from knowledge_base.entry import CATEGORIES, CATEGORY_NAMES, FaqEntry
from knowledge_base.store import (
    ImportResult,
    PassageEmbedder,
    Progress,
    apply_import,
    list_entries,
    never_filled,
    to_faq,
)
from table_import import (
    ImportRejected,
    RowError,
    body,
    csv_rows,
    extra_cells,
    header,
    join_list,
    json_list,
    shown,
    split_list,
)

FIELDS: tuple[str, ...] = ("id", "category", "question", "variants", "answer", "keywords", "title")
#: optional text fields: an empty cell in a table means "left out" (the title is then made from the question)
OPTIONAL_TEXT: frozenset[str] = frozenset({"title"})
REQUIRED: frozenset[str] = frozenset({"id", "category", "question", "answer"})
LIST_FIELDS: frozenset[str] = frozenset({"variants", "keywords"})
FORMATS: tuple[str, ...] = ("json", "csv", "xlsx")
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
#: shipped with the package; written by the knowledge-base content work, loaded on first start
DEFAULT_KB_PATH = Path(__file__).parent / "data" / "default_kb.json"


class KbImportError(ImportRejected):
    """A rejected knowledge-base import: nothing was stored. ``str(e)`` lists the problems (Simplified Chinese)."""


def _file_error(message: str) -> KbImportError:
    return KbImportError.file(message)  # type: ignore[return-value]


def format_of(name: str | Path) -> str:
    """``json``, ``csv`` or ``xlsx`` from a file name's extension."""
    return table_import.format_of(name, FORMATS, KbImportError)


# ---------------------------------------------------------------- validation messages

_CATEGORY_LIST = "、".join(f"{c}（{CATEGORY_NAMES[c]}）" for c in CATEGORIES)


def describe(err: ValidationError) -> list[tuple[str | None, str]]:
    """(field, Chinese message) for each problem pydantic found in a :class:`FaqEntry`."""
    out: list[tuple[str | None, str]] = []
    for e in err.errors():
        loc = e.get("loc") or ()
        name = str(loc[0]) if loc else None
        item = f"第{int(loc[1]) + 1}项" if len(loc) > 1 and isinstance(loc[1], int) else ""
        kind, ctx, value = e.get("type", ""), e.get("ctx") or {}, e.get("input")
        if kind in ("string_too_short", "string_pattern_mismatch", "literal_error") and (
                value is None or (isinstance(value, str) and not value.strip())):
            msg = f"{item}不能为空"
        elif kind == "missing":
            msg = "缺失：此字段必填"
        elif kind == "extra_forbidden":
            msg = "不允许：不是知识条目的字段（只允许 " + "、".join(FIELDS) + "）"
        elif kind == "literal_error":
            msg = f"无效：{shown(value)} 不是有效类别，可选 {_CATEGORY_LIST}"
        elif kind == "string_too_short":
            msg = f"{item}无效：太短（至少 {ctx.get('min_length')} 个字）"
        elif kind == "string_too_long":
            msg = f"{item}无效：太长（最多 {ctx.get('max_length')} 个字）"
        elif kind == "too_long":
            msg = f"无效：项数太多（最多 {ctx.get('max_length')} 项）"
        elif kind == "string_pattern_mismatch":
            msg = (f"无效：{shown(value)} 格式不对（字母或数字开头，只含字母、数字、_ . -，最长 32 个字符，"
                   "例如 F001）")
        elif kind == "string_type":
            msg = f"{item}类型错误：应为文本，实际是 {shown(value)}"
        elif kind == "list_type":
            msg = f"类型错误：应为文本列表，实际是 {shown(value)}"
        elif kind == "value_error" and "empty" in str(e.get("msg", "")):
            msg = "无效：列表中不能有空项"
        elif kind == "model_type":
            msg = "类型错误：每条应为一个对象"
        else:
            msg = f"无效：{e.get('msg', kind)}"
        out.append((name, msg))
    return out


def validate_record(record: dict[str, Any]) -> FaqEntry:
    """One entry from API/JSON data; raises :class:`KbImportError` (row None) with Chinese messages."""
    try:
        return FaqEntry.model_validate(record)
    except ValidationError as e:
        raise KbImportError([RowError(None, f, m) for f, m in describe(e)]) from None


def _validate_rows(rows: Iterable[tuple[int, Any]], unit: str, progress: Progress | None,
                   total: int) -> list[FaqEntry]:
    entries: list[FaqEntry] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for n, (row, record) in enumerate(rows, 1):
        if progress is not None:
            progress(n, total)
        if isinstance(record, RowError):
            errors.append(record)
            continue
        if not isinstance(record, dict):
            errors.append(RowError(row, None, f"类型错误：应为一个对象，实际是 {shown(record)}", unit))
            continue
        raw_id = record.get("id")
        key = raw_id.strip() if isinstance(raw_id, str) else None
        if key and key in seen:
            errors.append(RowError(row, "id", f"重复：{shown(key)} 已在第{seen[key]}{unit}出现", unit))
        elif key:
            seen[key] = row
        try:
            entry = FaqEntry.model_validate(record)
        except ValidationError as e:
            errors.extend(RowError(row, f, m, unit) for f, m in describe(e))
            continue
        entries.append(entry)
    if errors:
        raise KbImportError.of(errors)
    return entries


# ---------------------------------------------------------------- readers


def _read_json(data: bytes, progress: Progress | None) -> list[FaqEntry]:
    doc = json_list(data, KbImportError, "一条知识条目")
    return _validate_rows(enumerate(doc, 1), "条", progress, len(doc))


def _table_record(row: int, names: list[str], cells: Sequence[Any]) -> dict[str, Any] | RowError:
    if (extra := extra_cells(row, names, cells)) is not None:
        return extra
    record: dict[str, Any] = {}
    for name, cell in zip(names, cells, strict=False):
        if not name:
            continue
        if cell is None:
            cell = ""
        if not isinstance(cell, str):  # XLSX numbers, dates, booleans
            return RowError(row, name, f"类型错误：应为文本，实际是 {shown(cell)}（请将单元格设为文本格式）")
        if name in OPTIONAL_TEXT and not cell.strip():
            continue
        record[name] = split_list(cell) if name in LIST_FIELDS else cell
    for name in names[len(cells):]:
        if name and name not in OPTIONAL_TEXT:
            record[name] = [] if name in LIST_FIELDS else ""
    return record


def _read_table(rows: list[Sequence[Any]], progress: Progress | None) -> list[FaqEntry]:
    first, rest = body(rows, FIELDS, KbImportError)  # blank lines are skipped
    names = header(first, FIELDS, REQUIRED, KbImportError)
    return _validate_rows(((n, _table_record(n, names, cells)) for n, cells in rest), "行", progress, len(rest))


def _read_csv(data: bytes, progress: Progress | None) -> list[FaqEntry]:
    rows = [[csv_cell_in(c) for c in row] for row in csv_rows(data, KbImportError)]
    return _read_table(rows, progress)


def _read_xlsx(data: bytes, progress: Progress | None) -> list[FaqEntry]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise _file_error(f"无法读取 XLSX 文件（{type(e).__name__}）：请确认是 Excel 2007 及以上的 .xlsx 文件"
                          ) from None
    except Exception as e:  # noqa: BLE001 - openpyxl raises many kinds on a damaged file
        raise _file_error(f"无法读取 XLSX 文件（{type(e).__name__}）") from None
    try:
        ws = wb.worksheets[0] if wb.worksheets else None
        if ws is None:
            raise _file_error("XLSX 文件中没有工作表")
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
    finally:
        wb.close()
    return _read_table(rows, progress)


def read_entries(data: bytes, fmt: str, progress: Progress | None = None) -> list[FaqEntry]:
    """Every entry of a file's bytes, or :class:`KbImportError` naming each bad row and field."""
    readers: dict[str, Callable[[bytes, Progress | None], list[FaqEntry]]] = {
        "json": _read_json, "csv": _read_csv, "xlsx": _read_xlsx}
    if fmt not in readers:
        raise _file_error(f"不支持的格式 {fmt!r}：请使用 json、csv 或 xlsx")
    return readers[fmt](data, progress)


def read_file(path: Path, progress: Progress | None = None) -> list[FaqEntry]:
    fmt = format_of(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise _file_error(f"无法读取文件 {path}：{e.strerror or e}") from None
    return read_entries(data, fmt, progress)


def import_bytes(session: Session, data: bytes, fmt: str, who: str, *, replace: bool = False,
                 progress: Progress | None = None, apply_progress: Progress | None = None,
                 embedder: PassageEmbedder | None = None) -> ImportResult:
    """Validate the whole file, then upsert (or ``replace``) in the session's transaction (not committed).

    On :class:`KbImportError` nothing was touched.
    """
    entries = read_entries(data, fmt, progress)
    return apply_import(session, entries, who, replace=replace, progress=apply_progress, embedder=embedder)


# ---------------------------------------------------------------- writers


def _rows(entries: Iterable[FaqEntry]) -> Iterable[list[str]]:
    for e in entries:
        yield [e.id, e.category, e.question, join_list(e.variants), e.answer, join_list(e.keywords), e.title or ""]


def write_json(entries: Iterable[FaqEntry]) -> bytes:
    doc = [e.model_dump() for e in entries]
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


#: a spreadsheet runs a CSV cell starting with these as a formula (CSV injection, OWASP): such cells are
#: written with a leading apostrophe, which the CSV reader takes off again, so a round trip is exact
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell_out(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_cell_in(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA_START) else value


def write_csv(entries: Iterable[FaqEntry]) -> bytes:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(FIELDS)
    w.writerows([csv_cell_out(c) for c in row] for row in _rows(entries))
    return buf.getvalue().encode("utf-8-sig")  # the BOM lets Excel open Chinese text correctly


def write_xlsx(entries: Iterable[FaqEntry]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.utils.exceptions import IllegalCharacterError

    wb = Workbook()
    ws = wb.active
    ws.title = "FAQ"
    ws.append(list(FIELDS))
    try:
        for r, values in enumerate(_rows(entries), 2):
            for c, value in enumerate(values, 1):
                cell = ws.cell(row=r, column=c, value=value)
                cell.data_type = "s"  # text, never a formula (a question may start with "=")
    except IllegalCharacterError:
        raise _file_error(f"第{r}行含有 Excel 不支持的控制字符，请改用 JSON 或 CSV 导出") from None
    for col, width in zip("ABCDEFG", (10, 14, 40, 40, 60, 30, 20), strict=True):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def write_entries(entries: Iterable[FaqEntry], fmt: str) -> bytes:
    writers = {"json": write_json, "csv": write_csv, "xlsx": write_xlsx}
    if fmt not in writers:
        raise _file_error(f"不支持的格式 {fmt!r}：请使用 json、csv 或 xlsx")
    return writers[fmt](entries)


def export_bytes(session: Session, fmt: str, *, category: str | None = None,
                 enabled: bool | None = None) -> bytes:
    """Every entry (or those of a category / enabled state) in ``fmt``, ordered by id."""
    return write_entries([to_faq(e) for e in list_entries(session, category=category, enabled=enabled)], fmt)


# ---------------------------------------------------------------- default KB


def load_default_if_empty(session: Session, path: Path | None = None, who: str = "system",
                          embedder: PassageEmbedder | None = None) -> int:
    """Load the default KB into a fresh database; returns the number of entries loaded (not committed).

    Does nothing (returns 0) when the file does not exist or the KB was ever filled (entries or history
    exist: an admin who deleted everything does not get the defaults back). A broken file raises
    :class:`KbImportError`.
    """
    path = DEFAULT_KB_PATH if path is None else Path(path)
    if not path.is_file() or not never_filled(session):
        return 0
    entries = read_file(path)
    return len(apply_import(session, entries, who, embedder=embedder).created)
