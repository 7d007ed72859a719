"""CSV and XLSX exports of the dashboard: the figures (``kind=figures``) or the filtered order list
(``kind=orders``: orders received in the period, oldest first).

CSV is UTF-8 with a BOM (Excel opens Chinese text right) and every text cell that a spreadsheet would run as a
formula gets a leading apostrophe (:func:`knowledge_base.io.csv_cell_out`); XLSX stores text cells as text,
never formulas. Phone numbers, case numbers and ID numbers in the order list are masked for every role but admin.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_console.dashboard.filters import Filters
from agent_console.dashboard.queries import order_conditions
from agent_console.pii import mask_text, sees_clear
from knowledge_base.io import csv_cell_out
from work_orders.models import WorkOrder
from work_orders.rules import STATE_NAMES
from work_orders.settings import CATEGORY_NAMES

CHANNEL_NAMES = {"hotline": "热线", "web": "网上诉求", "walk_in": "来访", "letter": "来信", "api": "系统接口"}
MAX_ORDER_ROWS = 200_000
ORDER_HEADER = ["工单编号", "渠道", "类别", "子类", "状态", "即办", "承办部门", "受理时间", "转办时间",
                "反馈期限", "反馈时间", "办结时间", "办理时长（小时）", "满意度", "超期", "重办次数", "来电号码",
                "案号", "诉求内容"]
Table = tuple[str, list[str], list[list[Any]]]


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x * 100:.1f}%"


def _num(x: Any) -> Any:
    return "" if x is None else x


def figure_tables(data: dict[str, Any]) -> list[Table]:
    """The figures of ``GET /api/dashboard`` as titled tables (the same numbers the page shows)."""
    f, c, o, h, s = data["filters"], data["calls"], data["orders"], data["handling"], data["satisfaction"]
    scope = [["时间段", f"{f['from']} 至 {f['to']}"], ["类别", CATEGORY_NAMES.get(f["category"] or "", "全部")],
             ["承办部门", f["department"] or "全部"], ["时区", f["timezone"]], ["生成时间", data["generated_at"]]]
    overview = [
        ["今日来电", c["today"]], ["期间来电", c["period"]], ["进入咨询的来电", c["consult"]],
        ["知识库自动解答", c["answered_by_kb"]], ["自动解答率", _pct(c["auto_answered_share"])],
        ["受理工单", o["received"]], ["即办件", o["settled_at_once"]], ["即办率", _pct(o["settled_at_once_share"])],
        ["办结工单", h["closed"]], ["平均办理时长（小时）", _num(h["avg_hours"])],
        ["办理时长P90（小时）", _num(h["p90_hours"])], ["评价数", s["rated"]], ["平均满意度", _num(s["mean_rating"])],
        ["满意（4-5分）", s["satisfied"]], ["满意率", _pct(s["satisfied_share"])],
    ]
    topics = data.get("hot_topics") or {"clusters": [], "keywords": []}
    return [
        ("筛选条件", ["项目", "值"], scope),
        ("概况", ["指标", "数值"], overview),
        ("每日趋势", ["日期", "受理", "即办", "办结", "评价数", "平均评分"],
         [[t["day"], t["received"], t["settled_at_once"], t["closed"], t["rated"], _num(t["mean_rating"])]
          for t in data["trend"]]),
        ("类别分布", ["类别", "受理工单"], [[x["name"], x["count"]] for x in data["categories"]]),
        ("超期工单（按承办部门，当前）", ["承办部门", "超期工单"],
         [[x["department"] or "未转办", x["count"]] for x in data["overdue"]]),
        ("热点问题", ["问题", "次数", "占比"], [[x["text"], x["count"], _pct(x["share"])] for x in topics["clusters"]]),
        ("热点关键词", ["关键词", "次数"], [[x["word"], x["count"]] for x in topics["keywords"]]),
    ]


def _local(t: datetime | None, f: Filters) -> str:
    return t.astimezone(f.tz).strftime("%Y-%m-%d %H:%M") if t else ""


def order_rows(db: Session, f: Filters, role: str) -> Iterator[list[Any]]:
    clear = sees_clear(role)
    show = (lambda t: t) if clear else mask_text
    W = WorkOrder
    q = (select(W.number, W.channel, W.category, W.subcategory, W.status, W.settled_at_once, W.assignee,
                W.created_at, W.dispatched_at, W.feedback_due, W.answered_at, W.closed_at, W.rating, W.overdue,
                W.reopen_count, W.citizen_phone, W.case_number, W.content)
         .where(*order_conditions(f, W.created_at)).order_by(W.created_at, W.id)
         .execution_options(yield_per=2000))
    for r in db.execute(q):
        hours = round((r.closed_at - r.created_at).total_seconds() / 3600, 2) if r.closed_at else ""
        yield [r.number, CHANNEL_NAMES.get(r.channel, r.channel), CATEGORY_NAMES.get(r.category, r.category),
               r.subcategory, STATE_NAMES.get(r.status, r.status), "是" if r.settled_at_once else "否",
               r.assignee or "", _local(r.created_at, f), _local(r.dispatched_at, f), _local(r.feedback_due, f),
               _local(r.answered_at, f), _local(r.closed_at, f), hours, _num(r.rating), "是" if r.overdue else "否",
               r.reopen_count, show(r.citizen_phone or ""), show(r.case_number or ""), show(r.content or "")]


def _csv_line(row: Iterable[Any]) -> str:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerow([csv_cell_out(v) if isinstance(v, str) else v for v in row])
    return buf.getvalue()


def figures_csv(tables: list[Table]) -> bytes:
    out = []
    for i, (title, header, rows) in enumerate(tables):
        if i:
            out.append("\r\n")
        out.append(_csv_line([title]))
        out.append(_csv_line(header))
        out.extend(_csv_line(r) for r in rows)
    return ("\ufeff" + "".join(out)).encode("utf-8")


def orders_csv(rows: Iterable[list[Any]]) -> Iterator[bytes]:
    """Streamed: the BOM and header, then the rows in chunks."""
    yield ("\ufeff" + _csv_line(ORDER_HEADER)).encode("utf-8")
    chunk: list[str] = []
    for r in rows:
        chunk.append(_csv_line(r))
        if len(chunk) >= 1000:
            yield "".join(chunk).encode("utf-8")
            chunk = []
    if chunk:
        yield "".join(chunk).encode("utf-8")


def _cells(ws: Any, row: Iterable[Any]) -> list[Any]:
    cells = []
    for v in row:
        if isinstance(v, str):
            cell = WriteOnlyCell(ws, value=ILLEGAL_CHARACTERS_RE.sub("", v))
            cell.data_type = "s"  # text, never a formula
        else:
            cell = WriteOnlyCell(ws, value=v)
        cells.append(cell)
    return cells


def xlsx(sheets: list[Table]) -> bytes:
    from openpyxl import Workbook  # lazily: only an Excel export needs it (and it is slow to import)

    wb = Workbook(write_only=True)
    for title, header, rows in sheets:
        ws = wb.create_sheet(title=title[:31].replace("（", "(").replace("）", ")").replace("，", " "))
        ws.append(_cells(ws, header))
        for r in rows:
            ws.append(_cells(ws, r))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
