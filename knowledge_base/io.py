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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from knowledge_base.entry import CATEGORIES, CATEGORY_NAMES, FaqEntry
from knowledge_base.store import ImportResult, Progress, apply_import, list_entries, never_filled, to_faq

FIELDS: tuple[str, ...] = ("id", "category", "question", "variants", "answer", "keywords")
REQUIRED: frozenset[str] = frozenset({"id", "category", "question", "answer"})
LIST_FIELDS: frozenset[str] = frozenset({"variants", "keywords"})
FORMATS: tuple[str, ...] = ("json", "csv", "xlsx")
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
#: shipped with the package; written by the knowledge-base content work, loaded on first start
DEFAULT_KB_PATH = Path(__file__).parent / "data" / "default_kb.json"
#: at most this many problems are listed (the rest are counted)
MAX_REPORTED = 50
SEPARATOR = "|"


@dataclass(frozen=True)
class RowError:
    """One problem: ``row`` None for the file as a whole, ``field`` None for the row as a whole."""

    row: int | None
    field: str | None
    message: str
    unit: str = "行"

    def __str__(self) -> str:
        where = f"第{self.row}{self.unit} " if self.row is not None else ""
        what = f"{self.field} 字段" if self.field else ""
        return f"{where}{what}{self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": str(self)}


class KbImportError(Exception):
    """A rejected import: nothing was stored. ``str(e)`` lists the problems (Simplified Chinese)."""

    def __init__(self, errors: Sequence[RowError], total: int | None = None) -> None:
        self.errors = list(errors)
        self.total = total if total is not None else len(self.errors)
        lines = [str(e) for e in self.errors]
        if self.total > len(lines):
            lines.append(f"……另有 {self.total - len(lines)} 处错误")
        super().__init__("\n".join(lines))


def _file_error(message: str) -> KbImportError:
    return KbImportError([RowError(None, None, message)])


def format_of(name: str | Path) -> str:
    """``json``, ``csv`` or ``xlsx`` from a file name's extension."""
    suffix = Path(str(name)).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise _file_error(f"无法识别的文件类型“{Path(str(name)).name}”：请使用 .json、.csv 或 .xlsx 文件")
    return suffix


# ---------------------------------------------------------------- validation messages

_CATEGORY_LIST = "、".join(f"{c}（{CATEGORY_NAMES[c]}）" for c in CATEGORIES)


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"“{text[:40]}{'…' if len(text) > 40 else ''}”"


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
            msg = f"无效：{_shown(value)} 不是有效类别，可选 {_CATEGORY_LIST}"
        elif kind == "string_too_short":
            msg = f"{item}无效：太短（至少 {ctx.get('min_length')} 个字）"
        elif kind == "string_too_long":
            msg = f"{item}无效：太长（最多 {ctx.get('max_length')} 个字）"
        elif kind == "too_long":
            msg = f"无效：项数太多（最多 {ctx.get('max_length')} 项）"
        elif kind == "string_pattern_mismatch":
            msg = (f"无效：{_shown(value)} 格式不对（字母或数字开头，只含字母、数字、_ . -，最长 32 个字符，"
                   "例如 F001）")
        elif kind == "string_type":
            msg = f"{item}类型错误：应为文本，实际是 {_shown(value)}"
        elif kind == "list_type":
            msg = f"类型错误：应为文本列表，实际是 {_shown(value)}"
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
            errors.append(RowError(row, None, f"类型错误：应为一个对象，实际是 {_shown(record)}", unit))
            continue
        raw_id = record.get("id")
        key = raw_id.strip() if isinstance(raw_id, str) else None
        if key and key in seen:
            errors.append(RowError(row, "id", f"重复：{_shown(key)} 已在第{seen[key]}{unit}出现", unit))
        elif key:
            seen[key] = row
        try:
            entry = FaqEntry.model_validate(record)
        except ValidationError as e:
            errors.extend(RowError(row, f, m, unit) for f, m in describe(e))
            continue
        entries.append(entry)
    if errors:
        raise KbImportError(errors[:MAX_REPORTED], len(errors))
    return entries


# ---------------------------------------------------------------- readers


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        try:
            data.decode("gb18030")
        except UnicodeDecodeError:
            hint = ""
        else:
            hint = "（看起来是 GBK/GB18030 编码）"
        raise _file_error(f"文件编码错误：第{line}行不是有效的 UTF-8{hint}，请另存为 UTF-8 编码后重新导入") from None


def split_list(cell: str) -> list[str]:
    """The items of a list cell: ``a|b`` → ``["a", "b"]``; ``\\|`` is a literal ``|``, ``\\\\`` a ``\\``."""
    if not cell.strip():
        return []
    items, buf, i = [], [], 0
    while i < len(cell):
        ch = cell[i]
        if ch == "\\" and i + 1 < len(cell) and cell[i + 1] in "|\\":
            buf.append(cell[i + 1])
            i += 2
            continue
        if ch == SEPARATOR:
            items.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    items.append("".join(buf))
    return items


def join_list(items: Iterable[str]) -> str:
    return SEPARATOR.join(x.replace("\\", "\\\\").replace(SEPARATOR, "\\" + SEPARATOR) for x in items)


def _read_json(data: bytes, progress: Progress | None) -> list[FaqEntry]:
    text = _decode(data)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise _file_error(f"JSON 格式错误：第{e.lineno}行第{e.colno}列：{e.msg}") from None
    if not isinstance(doc, list):
        raise _file_error("JSON 文件应为一个列表（[ {...}, {...} ]），每个元素是一条知识条目")
    return _validate_rows(enumerate(doc, 1), "条", progress, len(doc))


def _header(cells: Sequence[Any]) -> list[str]:
    names: list[str] = []
    errors: list[RowError] = []
    for col, cell in enumerate(cells, 1):
        name = cell.strip() if isinstance(cell, str) else ("" if cell is None else str(cell))
        if not name:
            if any(c not in (None, "") for c in cells[col:]):
                errors.append(RowError(1, None, f"表头第{col}列为空"))
            names.append("")
            continue
        if name not in FIELDS:
            errors.append(RowError(1, name, "不允许：多余的列（只允许 " + "、".join(FIELDS) + "）"))
        elif name in names:
            errors.append(RowError(1, name, "重复：表头中出现了两次"))
        names.append(name)
    errors.extend(RowError(1, f, "缺失：表头中没有这一列") for f in FIELDS if f in REQUIRED and f not in names)
    if errors:
        raise KbImportError(errors)
    return names


def _table_record(row: int, names: list[str], cells: Sequence[Any]) -> dict[str, Any] | RowError:
    if len(cells) > len(names) and any(c not in (None, "") for c in cells[len(names):]):
        return RowError(row, None, f"列数多于表头（{len(cells)} > {len(names)}）")
    record: dict[str, Any] = {}
    for name, cell in zip(names, cells, strict=False):
        if not name:
            continue
        if cell is None:
            cell = ""
        if not isinstance(cell, str):  # XLSX numbers, dates, booleans
            return RowError(row, name, f"类型错误：应为文本，实际是 {_shown(cell)}（请将单元格设为文本格式）")
        record[name] = split_list(cell) if name in LIST_FIELDS else cell
    for name in names[len(cells):]:
        if name:
            record[name] = [] if name in LIST_FIELDS else ""
    return record


def _read_table(rows: list[Sequence[Any]], progress: Progress | None) -> list[FaqEntry]:
    while rows and all(c in (None, "") or (isinstance(c, str) and not c.strip()) for c in rows[-1]):
        rows.pop()
    if not rows:
        raise _file_error("文件是空的：第1行应为表头（" + ",".join(FIELDS) + "）")
    names = _header(rows[0])
    body = [(n, cells) for n, cells in enumerate(rows[1:], 2)
            if any(c not in (None, "") for c in cells)]  # blank lines are skipped
    return _validate_rows(((n, _table_record(n, names, cells)) for n, cells in body), "行", progress, len(body))


def _read_csv(data: bytes, progress: Progress | None) -> list[FaqEntry]:
    text = _decode(data)
    try:
        rows = [[csv_cell_in(c) for c in row] for row in csv.reader(io.StringIO(text, newline=""), strict=True)]
    except csv.Error as e:
        raise _file_error(f"CSV 格式错误：{e}") from None
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
                 progress: Progress | None = None, apply_progress: Progress | None = None) -> ImportResult:
    """Validate the whole file, then upsert (or ``replace``) in the session's transaction (not committed).

    On :class:`KbImportError` nothing was touched.
    """
    entries = read_entries(data, fmt, progress)
    return apply_import(session, entries, who, replace=replace, progress=apply_progress)


# ---------------------------------------------------------------- writers


def _rows(entries: Iterable[FaqEntry]) -> Iterable[list[str]]:
    for e in entries:
        yield [e.id, e.category, e.question, join_list(e.variants), e.answer, join_list(e.keywords)]


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
    for col, width in zip("ABCDEF", (10, 14, 40, 40, 60, 30), strict=True):
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


def load_default_if_empty(session: Session, path: Path | None = None, who: str = "system") -> int:
    """Load the default KB into a fresh database; returns the number of entries loaded (not committed).

    Does nothing (returns 0) when the file does not exist or the KB was ever filled (entries or history
    exist: an admin who deleted everything does not get the defaults back). A broken file raises
    :class:`KbImportError`.
    """
    path = DEFAULT_KB_PATH if path is None else Path(path)
    if not path.is_file() or not never_filled(session):
        return 0
    entries = read_file(path)
    return len(apply_import(session, entries, who).created)
