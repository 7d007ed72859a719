"""Reading case files for the demo store: JSON or CSV, every problem found before anything is stored.

Columns (CSV header row, or the keys of each JSON object; any order):

=====================  ========  =================================================================
column                 required  content
=====================  ========  =================================================================
case_number            yes       案号 in any written or keypad form; stored canonical
lookup_number                    查询号 printed on notices, 6-12 digits, unique
cause                  yes       案由, e.g. 民间借贷纠纷
parties                yes       ``身份:姓名`` or ``身份:姓名:身份证后6位`` items, ``|``-separated in CSV
                                 (a JSON list of such strings or of ``{"role", "name", "id_last6"}``)
stage                  yes       filed/in_trial/heard/judged/enforcement/suspended/closed or the Chinese
                                 name (立案, 审理中, 已开庭, 已判决, 执行中, 中止, 结案)
hearing_at                       next hearing, ``2027-03-05 09:30`` (court's time zone) or ISO 8601
hearing_place                    e.g. 第三法庭 (only with hearing_at)
judge, clerk                     names of the judge (承办法官) and clerk (书记员)
department                       e.g. 民一庭
judge_team_line                  SIP URI or phone number of the judge's team
enforcement_status               执行情况, as it should be spoken
refund_status                    退费 / 执行款 status, as it should be spoken
updated_at                       when the case last changed (default: import time)
query_password                   查询密码, 4-12 digits (hashed on import, never stored)
=====================  ========  =================================================================

CSV is UTF-8 (a BOM is allowed); list cells separate items with ``|`` (``\\|`` is a literal ``|``). The ID
digits are hashed on import (:mod:`court_cases.hashing`) and never stored.

:func:`read_cases` either returns every row or raises :class:`CaseImportError` listing the problems, each
naming the row (CSV: the header is row 1, the first case row 2; JSON: 第1条 is the first object) and the
field, in Simplified Chinese.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

import table_import
from court_cases.case import DEFAULT_TZ, PARTY_ROLES, STAGE_NAMES, CaseInfo, Hearing, Party, Stage, aware
from court_cases.numbers import LOOKUP_MAX, LOOKUP_MIN, lookup_number, normalise
from table_import import (
    ImportRejected,
    RowError,
    body,
    csv_rows,
    extra_cells,
    header,
    json_list,
    shown,
    split_list,
)

FIELDS: tuple[str, ...] = (
    "case_number", "lookup_number", "cause", "parties", "stage", "hearing_at", "hearing_place", "judge", "clerk",
    "department", "judge_team_line", "enforcement_status", "refund_status", "updated_at", "query_password",
)
REQUIRED: frozenset[str] = frozenset({"case_number", "cause", "parties", "stage"})
FORMATS: tuple[str, ...] = ("json", "csv")
MAX_LEN = {"cause": 100, "hearing_place": 64, "judge": 32, "clerk": 32, "department": 64, "judge_team_line": 128,
           "enforcement_status": 200, "refund_status": 200}
#: shipped with the package, loaded into an empty demo store on first start (``cases.load_demo``)
DEMO_CASES_PATH = Path(__file__).parent / "data" / "demo_cases.json"
_ID6_RE = re.compile(r"^\d{5}[\dX]$")
_PASSWORD_RE = re.compile(r"^\d{4,12}$")
_LINE_RE = re.compile(r"^(sips?:[^\s]{3,120}|\+?[\d\-#* ]{3,32})$")

Progress = Callable[[int, int], None]


class CaseImportError(ImportRejected):
    """A rejected case import: nothing was stored. ``str(e)`` lists the problems (Simplified Chinese)."""


@dataclass
class CaseRow:
    """One validated row: the case, and the secrets to hash (``id_last6`` per party, None where not given)."""

    row: int
    info: CaseInfo
    query_password: str | None = None
    id_last6: list[str | None] = field(default_factory=list)
    #: False when the file left updated_at out (then the import time stands in, and is not compared)
    updated_at_given: bool = False
    #: how the file counts its rows: 行 (CSV lines) or 条 (JSON objects)
    unit: str = "行"


def _file_error(message: str) -> CaseImportError:
    return CaseImportError.file(message)  # type: ignore[return-value]


def format_of(name: str | Path) -> str:
    return table_import.format_of(name, FORMATS, CaseImportError)


# ---------------------------------------------------------------- one row


def parse_time(value: str, tz: str) -> datetime | None:
    """``2027-03-05 09:30``, ``2027/3/5 9:30`` or ISO 8601 with an offset; naive times are in ``tz``."""
    t = value.strip().replace("/", "-").replace("T", " ")
    m = re.match(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?(.*)$", t)
    if not m:
        return None
    y, mo, d, hh, mm, ss, rest = m.groups()
    iso = f"{int(y):04d}-{int(mo):02d}-{int(d):02d}"
    if hh is not None:
        iso += f"T{int(hh):02d}:{mm}:{ss or '00'}"
    try:
        parsed = datetime.fromisoformat(iso + rest.strip())
    except ValueError:
        return None
    return aware(parsed, tz)


def _party(item: Any, n: int) -> tuple[Party | None, str | None, str | None]:
    """(party, id_last6, error) for one item of the parties list (``n`` counts from 1)."""
    where = f"第{n}项"
    if isinstance(item, dict):
        extra = set(item) - {"role", "name", "id_last6"}
        if extra:
            return None, None, f"{where}不允许：多余的键 {shown(sorted(extra))}（只允许 role、name、id_last6）"
        role, name, id6 = item.get("role"), item.get("name"), item.get("id_last6")
    elif isinstance(item, str):
        parts = [p.strip() for p in re.split(r"[:：]", item)]
        if len(parts) not in (2, 3):
            return None, None, (f"{where}格式不对：{shown(item)} 应为“身份:姓名”或“身份:姓名:身份证后6位”，"
                                "例如 原告:张三:12345X")
        role, name = parts[0], parts[1]
        id6 = parts[2] if len(parts) == 3 else None
    else:
        return None, None, f"{where}类型错误：应为文本或对象，实际是 {shown(item)}"
    if not isinstance(role, str) or not role.strip():
        return None, None, f"{where}缺少当事人身份（例如 原告、被告、申请执行人）"
    if role.strip() not in PARTY_ROLES:
        return None, None, f"{where}无效：{shown(role)} 不是已知的当事人身份，可选 {'、'.join(PARTY_ROLES[:11])} 等"
    if not isinstance(name, str) or not name.strip():
        return None, None, f"{where}缺少当事人姓名"
    if len(name.strip()) > 64:
        return None, None, f"{where}姓名太长（最多 64 个字）"
    if id6 is not None and not (isinstance(id6, str) and not id6.strip()):
        id6 = str(id6).strip().upper()
        if not _ID6_RE.match(id6):
            return None, None, f"{where}身份证后6位无效：应为6位数字，最后一位可以是 X"
    else:
        id6 = None
    return Party(role=role.strip(), name=name.strip()), id6, None


def _text(record: dict[str, Any], name: str, errors: list[tuple[str | None, str]]) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and name in ("judge_team_line",
                                                                                     "query_password"):
        value = str(value)
    if not isinstance(value, str):
        errors.append((name, f"类型错误：应为文本，实际是 {shown(value)}"))
        return None
    value = value.strip()
    if name in MAX_LEN and len(value) > MAX_LEN[name]:
        errors.append((name, f"无效：太长（最多 {MAX_LEN[name]} 个字）"))
        return None
    return value or None


def validate_row(record: Any, tz: str = DEFAULT_TZ) -> tuple[CaseRow | None, list[tuple[str | None, str]]]:
    """(the row, []) or (None, [(field, Chinese message), ...]); ``row`` of the result is set by the caller."""
    if not isinstance(record, dict):
        return None, [(None, f"类型错误：应为一个对象，实际是 {shown(record)}")]
    errors: list[tuple[str | None, str]] = []
    for name in record:
        if name not in FIELDS:
            errors.append((str(name), "不允许：不是案件的字段（只允许 " + "、".join(FIELDS) + "）"))
    for name in FIELDS:
        value = record.get(name)
        if name in REQUIRED and (value is None or (isinstance(value, str | list) and not value)
                                 or (isinstance(value, str) and not value.strip())):
            errors.append((name, "缺失：此字段必填"))
    data: dict[str, Any] = {}

    raw = record.get("case_number")
    if isinstance(raw, str) and raw.strip():
        ref = normalise(raw)
        if ref is None:
            errors.append(("case_number", f"无效：{shown(raw)} 不是有效的案号"
                                          "（例如 （2023）粤0305民初1234号 或按键形式 2023*440305*1*1234）"))
        elif ref.kind == "lookup":
            errors.append(("case_number", f"无效：{shown(raw)} 是查询号，不是案号；查询号请填在 lookup_number 列"))
        else:
            data["case_number"] = ref.value
    elif raw is not None and not isinstance(raw, str):
        errors.append(("case_number", f"类型错误：应为文本，实际是 {shown(raw)}"))

    raw = record.get("lookup_number")
    if raw is not None and not (isinstance(raw, str) and not raw.strip()):
        digits = lookup_number(str(raw)) if isinstance(raw, str | int) and not isinstance(raw, bool) else None
        if digits is None:
            errors.append(("lookup_number", f"无效：{shown(raw)} 应为 {LOOKUP_MIN} 至 {LOOKUP_MAX} 位数字"))
        else:
            data["lookup_number"] = digits

    for name in ("cause", "judge", "clerk", "department", "enforcement_status", "refund_status"):
        value = _text(record, name, errors)
        if value is not None:
            data[name] = value

    raw = record.get("stage")
    if isinstance(raw, str) and raw.strip():
        stage = Stage.parse(raw)
        if stage is None:
            errors.append(("stage", f"无效：{shown(raw)} 不是有效阶段，可选 {STAGE_NAMES}"))
        else:
            data["stage"] = stage
    elif raw is not None and not isinstance(raw, str):
        errors.append(("stage", f"类型错误：应为文本，实际是 {shown(raw)}"))

    raw = record.get("parties")
    items: list[Any] | None = None
    if isinstance(raw, str):
        items = split_list(raw)
    elif isinstance(raw, list):
        items = raw
    elif raw is not None:
        errors.append(("parties", f"类型错误：应为列表，实际是 {shown(raw)}"))
    id_last6: list[str | None] = []
    if items:
        if len(items) > 50:
            errors.append(("parties", "无效：当事人太多（最多 50 个）"))
        parties: list[Party] = []
        for n, item in enumerate(items[:50], 1):
            party, id6, err = _party(item, n)
            if err:
                errors.append(("parties", err))
            elif party is not None:
                parties.append(party)
                id_last6.append(id6)
        data["parties"] = parties

    for name in ("hearing_at", "updated_at"):
        value = _text(record, name, errors)
        if value is None:
            continue
        parsed = parse_time(value, tz)
        if parsed is None:
            errors.append((name, f"无效：{shown(value)} 不是有效的日期时间（例如 2027-03-05 09:30）"))
        elif name == "hearing_at" and ":" not in value:
            errors.append((name, f"无效：{shown(value)} 缺少开庭时间（例如 2027-03-05 09:30）"))
        else:
            data[name] = parsed
    place = _text(record, "hearing_place", errors)
    if "hearing_at" in data:
        data["next_hearing"] = Hearing(at=data.pop("hearing_at"), place=place or "")
    elif place and not record.get("hearing_at"):
        errors.append(("hearing_place", "无效：填写了开庭地点但没有开庭时间 hearing_at"))

    line = _text(record, "judge_team_line", errors)
    if line is not None:
        if not _LINE_RE.match(line):
            errors.append(("judge_team_line", f"无效：{shown(line)} 应为 SIP 地址（sip:…）或电话号码"))
        else:
            data["judge_team_line"] = line

    password = _text(record, "query_password", errors)
    if password is not None and not _PASSWORD_RE.match(password):
        errors.append(("query_password", "无效：查询密码应为 4 至 12 位数字（电话按键只能输入数字）"))

    if errors:
        return None, errors
    try:
        info = CaseInfo.model_validate(data, context={"tz": tz})
    except ValidationError as e:  # pragma: no cover - the checks above cover the model's rules
        return None, [(str(err["loc"][0]) if err.get("loc") else None, f"无效：{err['msg']}") for err in e.errors()]
    return CaseRow(row=0, info=info, query_password=password, id_last6=id_last6,
                   updated_at_given="updated_at" in data), []


def _validate_rows(rows: Iterable[tuple[int, Any]], unit: str, total: int, tz: str,
                   progress: Progress | None) -> list[CaseRow]:
    out: list[CaseRow] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    seen_lookup: dict[str, int] = {}
    for n, (row, record) in enumerate(rows, 1):
        if progress is not None:
            progress(n, total)
        if isinstance(record, RowError):
            errors.append(record)
            continue
        case, problems = validate_row(record, tz)
        errors.extend(RowError(row, f, m, unit) for f, m in problems)
        if case is None:
            continue
        case.row, case.unit = row, unit
        number = case.info.case_number
        if number in seen:
            errors.append(RowError(row, "case_number", f"重复：{shown(number)} 已在第{seen[number]}{unit}出现", unit))
        else:
            seen[number] = row
        lookup = case.info.lookup_number
        if lookup is not None:
            if lookup in seen_lookup:
                errors.append(RowError(row, "lookup_number",
                                       f"重复：查询号 {shown(lookup)} 已在第{seen_lookup[lookup]}{unit}出现", unit))
            else:
                seen_lookup[lookup] = row
        out.append(case)
    if errors:
        raise CaseImportError.of(errors)
    return out


# ---------------------------------------------------------------- files


def _read_json(data: bytes, tz: str, progress: Progress | None) -> list[CaseRow]:
    doc = json_list(data, CaseImportError, "一个案件")
    return _validate_rows(enumerate(doc, 1), "条", len(doc), tz, progress)


def _csv_record(row: int, names: list[str], cells: Sequence[str]) -> dict[str, Any] | RowError:
    if (extra := extra_cells(row, names, cells)) is not None:
        return extra
    return {name: cell for name, cell in zip(names, cells, strict=False) if name and cell.strip()}


def _read_csv(data: bytes, tz: str, progress: Progress | None) -> list[CaseRow]:
    first, rest = body(csv_rows(data, CaseImportError), FIELDS, CaseImportError)
    names = header(first, FIELDS, REQUIRED, CaseImportError)
    return _validate_rows(((n, _csv_record(n, names, cells)) for n, cells in rest), "行", len(rest), tz, progress)


def read_cases(data: bytes, fmt: str, *, tz: str = DEFAULT_TZ, progress: Progress | None = None) -> list[CaseRow]:
    """Every case of a file's bytes, or :class:`CaseImportError` naming each bad row and field."""
    if fmt == "json":
        return _read_json(data, tz, progress)
    if fmt == "csv":
        return _read_csv(data, tz, progress)
    raise _file_error(f"不支持的格式 {fmt!r}：请使用 json 或 csv")


def read_file(path: Path, *, tz: str = DEFAULT_TZ, progress: Progress | None = None) -> list[CaseRow]:
    fmt = format_of(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise _file_error(f"无法读取文件 {path}：{e.strerror or e}") from None
    return read_cases(data, fmt, tz=tz, progress=progress)
