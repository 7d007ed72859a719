"""Reading import files row by row with errors people can act on — shared by the knowledge base's and
the case store's imports (all-or-nothing: every problem is collected, each naming its row and field,
before anything is stored). Messages are Simplified Chinese: they reach admins.

Rows are counted as a person counts: in CSV/XLSX the header is row 1 (``unit`` 行); in JSON the first
object is 第1条. List cells hold items separated by ``|``; ``\\|`` and ``\\\\`` stand for a literal
``|`` and ``\\``, so an export reads back exactly.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

SEPARATOR = "|"
#: at most this many problems are listed (the rest are counted)
MAX_REPORTED = 50


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


class ImportRejected(Exception):
    """A rejected import: nothing was stored. ``str(e)`` lists the problems."""

    def __init__(self, errors: Sequence[RowError], total: int | None = None) -> None:
        self.errors = list(errors)
        self.total = total if total is not None else len(self.errors)
        lines = [str(e) for e in self.errors]
        if self.total > len(lines):
            lines.append(f"……另有 {self.total - len(lines)} 处错误")
        super().__init__("\n".join(lines))

    @classmethod
    def file(cls, message: str) -> ImportRejected:
        """A problem with the file as a whole."""
        return cls([RowError(None, None, message)])

    @classmethod
    def of(cls, errors: list[RowError]) -> ImportRejected:
        return cls(errors[:MAX_REPORTED], len(errors))


E = TypeVar("E", bound=ImportRejected)


def shown(value: Any) -> str:
    """A value quoted for a message, cut at 40 characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return f"“{text[:40]}{'…' if len(text) > 40 else ''}”"


def format_of(name: str | Path, formats: Sequence[str], error: type[E]) -> str:
    """The format from a file name's extension, one of ``formats``."""
    suffix = Path(str(name)).suffix.lower().lstrip(".")
    if suffix not in formats:
        listed = "、".join(f".{f}" for f in formats[:-1]) + " 或 " if len(formats) > 1 else ""
        listed += f".{formats[-1]}"
        raise error.file(f"无法识别的文件类型“{Path(str(name)).name}”：请使用 {listed} 文件")
    return suffix


def decode(data: bytes, error: type[E]) -> str:
    """UTF-8 text (a BOM is allowed); otherwise the line of the first bad byte, and a hint at GBK."""
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
        raise error.file(f"文件编码错误：第{line}行不是有效的 UTF-8{hint}，请另存为 UTF-8 编码后重新导入") from None


def json_list(data: bytes, error: type[E], what: str) -> list[Any]:
    """The list a JSON import file must hold (``what``: 一条知识条目, 一个案件)."""
    try:
        doc = json.loads(decode(data, error))
    except json.JSONDecodeError as e:
        raise error.file(f"JSON 格式错误：第{e.lineno}行第{e.colno}列：{e.msg}") from None
    if not isinstance(doc, list):
        raise error.file(f"JSON 文件应为一个列表（[ {{...}}, {{...}} ]），每个元素是{what}")
    return doc


def csv_rows(data: bytes, error: type[E]) -> list[list[str]]:
    try:
        return list(csv.reader(io.StringIO(decode(data, error), newline=""), strict=True))
    except csv.Error as e:
        raise error.file(f"CSV 格式错误：{e}") from None


def blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def header(cells: Sequence[Any], fields: Sequence[str], required: Iterable[str], error: type[E]) -> list[str]:
    """Column names of a header row ('' for an empty trailing column); unknown, repeated or missing
    required columns are errors of row 1."""
    names: list[str] = []
    errors: list[RowError] = []
    for col, cell in enumerate(cells, 1):
        name = cell.strip() if isinstance(cell, str) else ("" if cell is None else str(cell))
        if not name:
            if any(not blank(c) for c in cells[col:]):
                errors.append(RowError(1, None, f"表头第{col}列为空"))
            names.append("")
            continue
        if name not in fields:
            errors.append(RowError(1, name, "不允许：多余的列（只允许 " + "、".join(fields) + "）"))
        elif name in names:
            errors.append(RowError(1, name, "重复：表头中出现了两次"))
        names.append(name)
    needed = set(required)
    errors.extend(RowError(1, f, "缺失：表头中没有这一列") for f in fields if f in needed and f not in names)
    if errors:
        raise error(errors)
    return names


Numbered = list[tuple[int, Sequence[Any]]]


def body(rows: list[Sequence[Any]], fields: Sequence[str], error: type[E]) -> tuple[Sequence[Any], Numbered]:
    """(header cells, [(row number, cells)]) of a table without its blank rows; an empty file is an error."""
    while rows and all(blank(c) for c in rows[-1]):
        rows.pop()
    if not rows:
        raise error.file("文件是空的：第1行应为表头（" + ",".join(fields) + "）")
    return rows[0], [(n, cells) for n, cells in enumerate(rows[1:], 2) if any(not blank(c) for c in cells)]


def extra_cells(row: int, names: list[str], cells: Sequence[Any]) -> RowError | None:
    if len(cells) > len(names) and any(not blank(c) for c in cells[len(names):]):
        return RowError(row, None, f"列数多于表头（{len(cells)} > {len(names)}）")
    return None


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


@dataclass
class ImportResult:
    """What an accepted import did, by key (FAQ id, case number)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.created) + len(self.updated) + len(self.unchanged)

    def summary(self) -> dict[str, int]:
        return {"total": self.total, "created": len(self.created), "updated": len(self.updated),
                "unchanged": len(self.unchanged), "deleted": len(self.deleted)}
