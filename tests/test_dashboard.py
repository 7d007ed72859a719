"""The supervisors' dashboard (issue 7, acceptance 3): figures checked against a seeded data set whose answers are
worked out by hand below, on a real SQLite file and a PostgreSQL database migrated to head (so the day summaries
are kept by the real triggers), through the API with real logins; filters, roles, bad filters, the exports, and the
summaries agreeing with counting the rows after updates, deletes and a re-run of the migration's backfill. Roles, bad
filters, the default period and the figures' file formats test no SQL of their own: SQLite only.

The seeded week is 2026-06-01 .. 06-07 in Asia/Shanghai (UTC+8, no holiday); the hub's clock says 06-08 12:00.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import text

from agent_console.app import create_app
from agent_console.auth.passwords import use_hasher
from agent_console.auth.users import create_user
from agent_console.config import HubConfig
from agent_console.dashboard import summary
from agent_console.dashboard.figures import figures
from agent_console.dashboard.filters import parse_filters
from agent_console.dashboard.queries import offset_segments, p90_rank
from agent_console.models import HANDLING_EDGES, Call, CallEventRecord
from hotline.db import alembic_config, make_engine
from hotline.hub_main import load_default_kb
from tests.pg_support import sqlite_only
from work_orders.models import Department, WorkOrder

TZ = ZoneInfo("Asia/Shanghai")
PASSWORD = "password1"
NOW = datetime(2026, 6, 8, 12, 0, tzinfo=TZ)
WEEK = {"from": "2026-06-01", "to": "2026-06-07"}


def at(day: int, hour: float, month: int = 6) -> datetime:
    """Local (court) time on 2026-<month>-<day>."""
    return datetime(2026, month, day, tzinfo=TZ) + timedelta(hours=hour)


#: name: (category, created, closed, assignee, settled at once, rating, rated, status, feedback_due, overdue flag)
ORDERS = {
    # 07:00 local on 06-01 is 05-31 23:00 UTC: received in the week by the court's day
    "A": ("consult", at(1, 7), at(1, 7), None, True, None, None, "closed", None, False),
    "B": ("query", at(1, 10), at(2, 12), "民一庭", False, 5, at(2, 12), "closed", None, False),  # 26 h
    "C": ("urge", at(2, 9), at(4, 11), "民一庭", False, 4, at(4, 11), "closed", None, False),  # 50 h
    "D": ("complaint", at(3, 8.5), at(6, 20.5), "执行局", False, 3, at(6, 20.5), "closed", None, False),  # 84 h
    "E": ("consult", at(4, 14), at(4, 16.5), "立案庭", False, 5, at(4, 16.5), "closed", None, False),  # 2.5 h
    "F": ("consult", at(5, 11), at(5, 11), None, True, None, None, "closed", None, False),  # 0 h
    "G": ("suggestion", at(5, 9), None, "执行局", False, None, None, "in_progress", at(6, 17.5), False),  # late
    "H": ("contact_judge", at(6, 10), None, None, False, None, None, "received", None, True),  # flagged
    # received 05-31 23:30, closed 06-01 01:30 local (05-31 17:30 UTC): closed in the week, 2 h
    "I": ("consult", at(31, 23.5, 5), at(1, 1.5), "立案庭", False, None, None, "closed", None, False),
    "J": ("query", at(8, 7.5), None, None, False, None, None, "received", None, False),  # 06-08: after the week
    "K": ("consult", at(2, 9), at(3, 9), "立案庭", False, 5, at(3, 9), "closed", None, False),  # 24 h
    "L": ("query", at(3, 9), at(3, 21), "民一庭", False, None, None, "closed", None, False),  # 12 h
    "M": ("urge", at(4, 9), at(7, 9), "执行局", False, 4, at(7, 9), "closed", None, False),  # 72 h
    "N": ("consult", at(20, 9, 5), at(22, 9, 5), "立案庭", False, 1, at(22, 9, 5), "closed", None, False),
    "O": ("urge", at(25, 9, 5), None, "民一庭", False, None, None, "in_progress", at(9, 17.5), False),  # not due
    "P": ("query", at(26, 9, 5), at(27, 9, 5), "民一庭", False, 5, at(27, 9, 5), "closed", None, True),  # closed
}
# handling hours of the orders closed in the week: A 0, F 0, I 2, E 2.5, L 12, K 24, B 26, C 50, M 72, D 84
CLOSED_HOURS = sorted([0, 0, 2, 2.5, 12, 24, 26, 50, 72, 84])


def seed(db) -> None:
    for name in ("民一庭", "执行局", "立案庭", "审判管理办公室"):
        db.add(Department(name=name, kind="department"))
    for i, (name, (cat, created, closed, assignee, settled, rating, rated, status, due, flag)) in enumerate(
            ORDERS.items(), 1):
        db.add(WorkOrder(number=f"12368-2026-{i:04d}", category=cat, content=f"工单{name} 来电13812345678",
                         citizen_phone="13812345678", created_at=created, updated_at=created, closed_at=closed,
                         assignee=assignee, settled_at_once=settled, rating=rating, rated_at=rated, status=status,
                         feedback_due=due, overdue=flag, dispatched_at=created if assignee else None))
    # calls: (start, menu path, end cause)
    calls = [(at(8, 9), ["welcome", "main", "consult"], "answered_by_kb"), (at(8, 10), ["welcome", "main"], "hangup"),
             (at(1, 9), ["welcome", "main", "consult", "consult_staff"], "hangup"),
             (at(3, 9), ["welcome", "main", "consult"], "answered_by_kb"),
             (at(5, 9), ["welcome", "main", "urge"], "hangup"),
             (at(7, 23.8), ["welcome", "main", "consult", "consult_staff"], "hangup"),  # 15:48 UTC on 06-07
             (at(31, 23, 5), ["welcome", "main", "consult"], "answered_by_kb")]  # 05-31: before the week
    for i, (start, path, cause) in enumerate(calls):
        db.add(Call(call_id=f"call-{i}", started_at=start, offered_at=start, ended_at=start + timedelta(minutes=2),
                    status="ended", end_cause=cause, menu_path=path, worker="w0"))
    # the two calls handed off from the consult menu asked the same question the knowledge base cannot answer
    for i, q in ((2, "检察院的电话是多少"), (5, "检察院电话多少")):
        ts = calls[i][0] + timedelta(seconds=30)
        db.add(CallEventRecord(event_id=f"ev-{i}", call_id=f"call-{i}", worker="w0", type="kb_decided", ts=ts,
                               payload={"decision": "handoff", "query": q, "node": "consult"}))


@pytest.fixture
def engine(migrated_db_url):
    e = make_engine(migrated_db_url)
    yield e
    e.dispose()


@pytest.fixture
def app(engine):
    previous = use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    load_default_kb(engine)
    app = create_app(HubConfig(secret_key="k" * 32, worker_token="t" * 24, cookie_secure=False), engine)
    app.state.ops.clock = lambda: NOW.timestamp()
    with app.state.sessionmaker() as db:
        for name, role in [("op", "operator"), ("sup", "supervisor"), ("adm", "admin"), ("hd", "handler")]:
            create_user(db, name, role, PASSWORD)
        seed(db)
        db.commit()
    yield app
    use_hasher(previous)


def client(app, name: str | None = None) -> TestClient:
    c = TestClient(app)
    if name:
        assert c.post("/api/auth/login", json={"username": name, "password": PASSWORD}).status_code == 200
    return c


def get(app, user="sup", **params):
    r = client(app, user).get("/api/dashboard", params={**WEEK, **params})
    assert r.status_code == 200, r.text
    return r.json()


# ------------------------------------------------------------------------------------------- figures
def test_the_weeks_figures_match_the_hand_computed_answers(app):
    d = get(app)
    assert d["source"] == "summary"
    assert d["filters"] == {"from": "2026-06-01", "to": "2026-06-07", "category": None, "department": None,
                            "timezone": "Asia/Shanghai"}
    # calls: two today (06-08); four in the week (06-01, 06-03, 06-05, 06-07 23:48), three reached consult,
    # one of them answered by the knowledge base
    assert d["calls"] == {"today": 2, "period": 4, "consult": 3, "answered_by_kb": 1, "auto_answered_share": 0.3333}
    # received in the week: A B C D E F G H K L M (I is 05-31, J 06-08); settled at once: A, F
    assert d["orders"] == {"received": 11, "settled_at_once": 2, "settled_at_once_share": round(2 / 11, 4)}
    # closed in the week: 10 orders, 272.5 hours; p90 = the ceil(0.9 * 10) = 9th smallest = 72 h
    assert sum(CLOSED_HOURS) == 272.5 and CLOSED_HOURS[p90_rank(10)] == 72
    assert d["handling"] == {"closed": 10, "avg_hours": 27.25, "p90_hours": 72.0, "p90_exact": True}
    # rated in the week: B 5, K 5, C 4, E 5, D 3, M 4 (N and P were rated in May)
    assert d["satisfaction"] == {"rated": 6, "mean_rating": 4.33, "satisfied": 5, "satisfied_share": 0.8333}
    assert {c["category"]: c["count"] for c in d["categories"]} == {
        "consult": 4, "query": 2, "urge": 2, "contact_judge": 1, "complaint": 1, "suggestion": 1}
    assert d["categories"][0] == {"category": "consult", "name": "咨询", "count": 4}
    # overdue now: G waits for feedback past its deadline (执行局), H is flagged (not dispatched); O is not due,
    # P is closed
    assert d["overdue"] == [{"department": "", "count": 1}, {"department": "执行局", "count": 1}]
    assert [(t["day"], t["received"], t["settled_at_once"], t["closed"], t["rated"], t["mean_rating"])
            for t in d["trend"]] == [
        ("2026-06-01", 2, 1, 2, 0, None), ("2026-06-02", 2, 0, 1, 1, 5.0), ("2026-06-03", 2, 0, 2, 1, 5.0),
        ("2026-06-04", 2, 0, 2, 2, 4.5), ("2026-06-05", 2, 1, 1, 0, None), ("2026-06-06", 1, 0, 1, 1, 3.0),
        ("2026-06-07", 0, 0, 1, 1, 4.0)]
    topics = d["hot_topics"]
    assert topics["questions"] == 2 and not topics["sampled"]
    assert [(c["count"], c["wordings"]) for c in topics["clusters"]] == [(2, 2)]
    assert topics["clusters"][0]["text"] in ("检察院的电话是多少", "检察院电话多少")
    assert {"word": "检察院", "count": 2} in topics["keywords"]
    assert d["departments"] == sorted(["民一庭", "执行局", "立案庭", "审判管理办公室"])


def test_filters_by_category_and_department(app):
    d = get(app, category="consult")
    # consult: A E F K received, A F settled; closed A 0, F 0, I 2, E 2.5, K 24 -> mean 5.7, p90 = 5th = 24
    assert d["orders"] == {"received": 4, "settled_at_once": 2, "settled_at_once_share": 0.5}
    assert d["handling"] == {"closed": 5, "avg_hours": 5.7, "p90_hours": 24.0, "p90_exact": True}
    assert d["satisfaction"] == {"rated": 2, "mean_rating": 5.0, "satisfied": 2, "satisfied_share": 1.0}
    assert d["categories"] == [{"category": "consult", "name": "咨询", "count": 4}]
    assert d["overdue"] == []
    assert d["calls"]["period"] == 4  # calls have no category: unchanged
    d = get(app, department="民一庭")
    # 民一庭: B C L received and closed (26, 50, 12 h); B 5 and C 4 rated; O (not due) and P (closed) are not overdue
    assert d["orders"] == {"received": 3, "settled_at_once": 0, "settled_at_once_share": 0.0}
    assert d["handling"] == {"closed": 3, "avg_hours": 29.33, "p90_hours": 50.0, "p90_exact": True}
    assert d["satisfaction"]["mean_rating"] == 4.5 and d["overdue"] == []
    d = get(app, category="urge", department="执行局")
    assert (d["orders"]["received"], d["handling"]["closed"], d["handling"]["avg_hours"]) == (1, 1, 72.0)
    d = get(app, **{"from": "2026-06-08", "to": "2026-06-08"})
    assert d["orders"]["received"] == 1 and d["handling"]["closed"] == 0 and d["handling"]["avg_hours"] is None
    assert d["handling"]["p90_hours"] is None and d["satisfaction"]["mean_rating"] is None


@sqlite_only
def test_default_period_is_the_last_thirty_days_up_to_today(app):
    r = client(app, "adm").get("/api/dashboard")
    assert r.status_code == 200
    assert r.json()["filters"]["from"] == "2026-05-10" and r.json()["filters"]["to"] == "2026-06-08"
    assert len(r.json()["trend"]) == 30


def test_the_summaries_agree_with_counting_the_rows(app, engine):
    """The same figures from raw rows; then after moves (dispatch, reopen, rating), deletes and a backfill."""
    def both(**kw):
        f = parse_filters(kw.get("from", WEEK["from"]), kw.get("to", WEEK["to"]), kw.get("category"),
                          kw.get("department"), today=NOW.date(), tz=TZ)
        with app.state.sessionmaker() as db:
            a, b = figures(db, f, NOW, source="orders"), figures(db, f, NOW, source="summary")
        assert (a.pop("source"), b.pop("source")) == ("orders", "summary")
        return a, b

    cases = [{}, {"category": "consult"}, {"department": "民一庭"}, {"department": "执行局", "category": "urge"},
             {"from": "2026-05-01", "to": "2026-06-30"}]
    for kw in cases:
        a, b = both(**kw)
        assert a == b, kw
    with engine.begin() as c:
        c.execute(text("UPDATE work_orders SET assignee = '审判管理办公室', dispatched_at = created_at "
                       "WHERE number LIKE '%0008'"))  # H dispatched
        c.execute(text("UPDATE work_orders SET status = 'reopened', closed_at = NULL, rating = 1 "
                       "WHERE number LIKE '%0002'"))  # B rated 1 and reopened
        c.execute(text("UPDATE work_orders SET category = 'complaint' WHERE number LIKE '%0005'"))
        c.execute(text("DELETE FROM work_orders WHERE number LIKE '%0013'"))  # M
        c.execute(text("UPDATE calls SET end_cause = 'answered_by_kb' WHERE call_id = 'call-2'"))
        c.execute(text("DELETE FROM calls WHERE call_id = 'call-4'"))
    d = get(app)
    assert d["orders"]["received"] == 10 and d["handling"]["closed"] == 8
    assert d["satisfaction"] == {"rated": 5, "mean_rating": 3.6, "satisfied": 3, "satisfied_share": 0.6}
    assert d["calls"] == {"today": 2, "period": 3, "consult": 3, "answered_by_kb": 2, "auto_answered_share": 0.6667}
    for kw in [*cases, {"department": "审判管理办公室"}]:
        a, b = both(**kw)
        assert a == b, kw
    before = [both(**kw)[1] for kw in cases]
    command.downgrade(alembic_config(engine), "0006")  # drops the summaries and triggers
    with app.state.sessionmaker() as db:
        f = parse_filters(WEEK["from"], WEEK["to"], None, None, today=NOW.date(), tz=TZ)
        assert not summary.usable(db, f)
        assert figures(db, f, NOW)["source"] == "orders"
    command.upgrade(alembic_config(engine), "head")  # sums existing rows once
    assert [both(**kw)[1] for kw in cases] == before


def test_large_periods_read_p90_from_the_histogram(app):
    f = parse_filters(WEEK["from"], WEEK["to"], None, None, today=NOW.date(), tz=TZ)
    with app.state.sessionmaker() as db:
        h = summary.summary_figures(db, f, NOW, exact_p90_max=0)["handling"]
    # 72 h lies in the bucket [72, 84): the 9th of 10 values is the only one there -> its middle, 78 h
    assert HANDLING_EDGES.index(72) + 1 == HANDLING_EDGES.index(84)
    assert h == {"closed": 10, "avg_hours": 27.25, "p90_hours": 78.0, "p90_exact": False}
    assert summary.histogram_p90([0] * 24) is None
    assert summary.histogram_p90([0] * 23 + [5]) == 720.0  # the open last bucket: its lower edge


def test_days_follow_a_zone_with_daylight_saving_time():
    ny = ZoneInfo("America/New_York")
    start = datetime(2026, 3, 7, tzinfo=ny).astimezone(UTC)
    segs = offset_segments(start, start + timedelta(days=3), ny)
    assert [s[2] for s in segs] == [-300, -240]
    assert segs[0][1] == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 02:00 EST


def test_a_zone_the_summaries_are_not_kept_in_is_counted_from_the_rows(engine):
    app = create_app(HubConfig(secret_key="k" * 32, worker_token="t" * 24, cookie_secure=False,
                               timezone="America/New_York"), engine)
    app.state.ops.clock = lambda: NOW.timestamp()
    previous = use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    try:
        with app.state.sessionmaker() as db:
            create_user(db, "sup", "supervisor", PASSWORD)
            seed(db)
            db.commit()
        d = get(app)
    finally:
        use_hasher(previous)
    assert d["source"] == "orders" and d["filters"]["timezone"] == "America/New_York"
    # in New York the week is 06-01 04:00 .. 06-08 04:00 UTC: A and B (received 06-01 02:00 UTC) fall before it,
    # J (06-07 23:30 UTC) inside; of the closings A's and I's fall before it
    assert d["orders"]["received"] == 10 and d["handling"]["closed"] == 8


# ------------------------------------------------------------------------------------------- access, bad input
@sqlite_only
def test_roles(app):
    assert client(app).get("/api/dashboard").status_code == 401
    assert client(app).get("/api/dashboard/export").status_code == 401
    for user in ("op", "hd"):
        r = client(app, user).get("/api/dashboard")
        assert r.status_code == 403 and r.json()["detail"] == "权限不足"
        assert client(app, user).get("/api/dashboard/export").status_code == 403
        assert client(app, user).get("/dashboard").status_code == 403
    r = client(app).get("/dashboard", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    for user in ("sup", "adm"):
        page = client(app, user).get("/dashboard")
        assert page.status_code == 200 and "督办看板" in page.text


@pytest.mark.parametrize("params, message", [
    ({"from": "2026-13-01"}, "开始日期“2026-13-01”不是有效日期"),
    ({"to": "昨天"}, "结束日期“昨天”不是有效日期"),
    ({"from": "2026-06-07", "to": "2026-06-01"}, "开始日期不能晚于结束日期"),
    ({"from": "2025-01-01", "to": "2026-06-01"}, "时间段不能超过366天"),
    ({"category": "weather"}, "未知的工单类别“weather”"),
    ({"department": "不存在的庭"}, "未知的承办部门“不存在的庭”"),
    ({"department": "庭" * 129}, "部门名称不能超过128个字符"),
])
@sqlite_only
def test_bad_filters_are_refused_in_chinese(app, params, message):
    c = client(app, "sup")
    for path in ("/api/dashboard", "/api/dashboard/export"):
        r = c.get(path, params=params)
        assert r.status_code == 422 and message in r.json()["detail"], (path, r.text)


def test_a_department_known_only_as_an_assignee_is_accepted(app):
    with app.state.sessionmaker() as db:
        db.add(WorkOrder(number="12368-2026-0999", category="complaint", content="x", created_at=at(2, 9),
                         assignee="督办", status="dispatched"))
        db.commit()
    assert get(app, department="督办")["orders"]["received"] == 1


# ------------------------------------------------------------------------------------------- exports
@sqlite_only
def test_figures_csv_and_xlsx(app):
    c = client(app, "sup")
    r = c.get("/api/dashboard/export", params={**WEEK, "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "dashboard-figures-20260601-20260607.csv" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    flat = {row[0]: row[1] for row in rows if len(row) == 2}
    assert flat["受理工单"] == "11" and flat["即办件"] == "2" and flat["即办率"] == "18.2%"
    assert flat["平均办理时长（小时）"] == "27.25" and flat["办理时长P90（小时）"] == "72.0"
    assert flat["平均满意度"] == "4.33" and flat["满意率"] == "83.3%" and flat["自动解答率"] == "33.3%"
    assert ["2026-06-04", "2", "0", "2", "2", "4.5"] in rows
    r = c.get("/api/dashboard/export", params={**WEEK, "format": "xlsx"})
    wb = load_workbook(io.BytesIO(r.content))
    assert {"概况", "每日趋势", "类别分布", "热点问题"} <= set(wb.sheetnames)
    values = {row[0]: row[1] for row in wb["概况"].iter_rows(values_only=True)}
    assert values["受理工单"] == 11 and values["平均办理时长（小时）"] == 27.25


def test_order_list_export_masks_and_defuses_formulas(app):
    with app.state.sessionmaker() as db:
        db.add(WorkOrder(number="12368-2026-0998", category="consult", content="=HYPERLINK(\"http://x\")",
                         citizen_phone="+8613900001111", created_at=at(2, 10), status="received"))
        db.commit()
    sup = client(app, "sup").get("/api/dashboard/export", params={**WEEK, "format": "csv", "kind": "orders"})
    assert sup.status_code == 200 and sup.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(sup.content.decode("utf-8-sig"))))
    assert rows[0][0] == "工单编号" and len(rows) == 1 + 12
    by_number = {r[0]: r for r in rows[1:]}
    formula = by_number["12368-2026-0998"]
    assert formula[-1] == "'=HYPERLINK(\"http://x\")"  # a spreadsheet shows it, never runs it
    assert formula[-3] == "139****1111"  # masked for supervisors
    assert "13812345678" not in sup.text and "138****5678" in sup.text
    b = by_number["12368-2026-0002"]
    assert b[2:5] == ["查询", "", "已办结"] and b[7] == "2026-06-01 10:00" and b[12] == "26.0" and b[13] == "5"
    adm = client(app, "adm").get("/api/dashboard/export", params={**WEEK, "format": "xlsx", "kind": "orders"})
    ws = load_workbook(io.BytesIO(adm.content))["工单明细"]
    cells = {row[0].value: row for row in ws.iter_rows(min_row=2)}
    cell = cells["12368-2026-0998"][-1]
    assert cell.value == "=HYPERLINK(\"http://x\")" and cell.data_type == "s"  # text, not a formula
    assert cells["12368-2026-0002"][16].value == "13812345678"  # admins see numbers in clear
    adm_csv = client(app, "adm").get("/api/dashboard/export", params={**WEEK, "format": "csv", "kind": "orders"})
    assert "'+8613900001111" in adm_csv.content.decode("utf-8-sig")  # a leading + is defused too
