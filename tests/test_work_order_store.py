"""Work orders without a hub process: the taxonomy at a large intake system's size, the one change function
(history line, compare-and-set), the scheduler's ledger under concurrent passes, the web form's rate limit,
Chinese field errors."""

from __future__ import annotations

import threading
import time as _time
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from sqlalchemy import func, select

from agent_console.work_orders.errors import field_errors
from agent_console.work_orders.intake import RateLimit
from hotline.db import make_engine, session_factory
from work_orders import scheduler
from work_orders import store as orders
from work_orders import taxonomy as tx
from work_orders.calendar import WorkCalendar
from work_orders.models import WorkOrder, WorkOrderHistory, WorkOrderNotice
from work_orders.rules import Actor, Refused
from work_orders.settings import CATEGORIES, WorkOrderSettings
from work_orders.store import Conflict, WorkOrderContext

SUP = Actor("zhang", "supervisor")


# ---------------------------------------------------------------------------------------------- taxonomy
def big_tree() -> dict:
    """6 categories / 15 second-level / 54 third-level nodes and 150 tags (a city's mailbox), deeper branches."""
    cats: dict = {c: {} for c in CATEGORIES}
    third = 0
    for i in range(15):
        leaves = {}
        for _ in range(4 if i < 9 else 3):
            leaves[f"三级{third:02d}"] = None
            third += 1
        cats[CATEGORIES[i % 6]][f"二级{i:02d}"] = leaves
    cats["consult"]["二级00"]["三级00"] = {"四级": {"五级": {"六级": None}}}
    return {"categories": cats, "tags": [f"标签{i:03d}" for i in range(150)]}


def test_taxonomy_takes_six_fifteen_fifty_four_and_150_tags(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text(yaml.safe_dump(big_tree(), allow_unicode=True), encoding="utf-8")
    t = tx.load(f)
    assert t.counts()[:3] == [6, 15, 54] and len(t.tags) == 150
    assert t.check_subcategory("consult", "二级00/三级00/四级/五级/六级") == "二级00/三级00/四级/五级/六级"
    assert t.check_tags(["标签149", "标签000"]) == ["标签149", "标签000"]
    with pytest.raises(tx.Invalid, match="“查询”下没有子类“二级00”"):
        t.check_subcategory("query", "二级00")  # 二级00 sits under consult
    with pytest.raises(tx.Invalid, match="未知的标签：标签150"):
        t.check_tags(["标签150"])
    start = _time.perf_counter()
    for _ in range(10_000):
        t.check_subcategory("consult", "二级00/三级00")
    assert _time.perf_counter() - start < 1.0
    # edited files are read again
    data = big_tree()
    data["tags"].append("新标签")
    _time.sleep(0.01)
    f.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    assert "新标签" in tx.load(f).tags


@pytest.mark.parametrize(("text", "match"), [
    ("categories: {parking: {}}", "unknown categories"),
    ("categories: {consult: {a/b: }}", "bad node name"),
    ("categories: {consult: [x, x]}", "appears twice"),
    ("tags: [a, a]", "tag 'a' appears twice"),
    ("colours: []", "only the keys"),
    ("categories: {consult: 3}", "expected a mapping"),
])
def test_taxonomy_file_errors_name_the_entry(tmp_path, text, match):
    f = tmp_path / "t.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(tx.TaxonomyError, match=match):
        tx.load(f)


def test_the_bundled_taxonomy_loads():
    t = tx.load()
    assert t.counts()[0] == 6 and {"回电", "即办", "留言"} <= set(t.tags)


# ---------------------------------------------------------------------------------------------- store
@pytest.fixture
def store(tmp_path, migrated_db_url):
    engine = make_engine(migrated_db_url)
    now = [datetime(2026, 11, 30, 2, 0, tzinfo=UTC)]  # 10:00 in Beijing, a Monday
    ctx = WorkOrderContext(WorkCalendar(), WorkOrderSettings(), attachments_dir=tmp_path / "att",
                           clock=lambda: now[0])
    yield session_factory(engine), ctx, now
    engine.dispose()


def test_a_move_writes_the_row_and_its_history_line_together(store):
    sessions, ctx, now = store
    with sessions() as db:
        o = orders.create(db, ctx, actor=SUP, channel="letter", category="urge", content="催办")
        db.commit()
        oid = o.id
    with sessions() as db:
        order, entry = orders.move(db, oid, "dispatch", SUP, {"assignee": "民一庭"}, ctx)
        assert entry.changes["assignee"] == [None, "民一庭"] and entry.status_from == "received"
        with pytest.raises(Refused):
            orders.move(db, oid, "dispatch", SUP, {"assignee": "民二庭"}, ctx)
    with sessions() as db:
        assert db.scalar(select(func.count(WorkOrderHistory.id))) == 2
        assert [n.audience for n in db.scalars(select(WorkOrderNotice))] == ["assignee"]
        assert db.get(WorkOrder, oid).assignee == "民一庭"


def test_a_stale_row_is_not_overwritten(store):
    sessions, ctx, now = store
    with sessions() as db:
        oid = orders.create(db, ctx, actor=SUP, channel="letter", category="consult", content="x").id
        db.commit()
    with sessions() as a, sessions() as b:
        stale = a.get(WorkOrder, oid)
        orders.move(b, oid, "dispatch", SUP, {"assignee": "民一庭"}, ctx)  # someone else, meanwhile
        now[0] += timedelta(seconds=1)
        with pytest.raises(Conflict):
            orders.record(a, stale, actor=SUP, action="dispatch", at=now[0], status="dispatched",
                          fields={"assignee": "民二庭"})
        a.rollback()
    with sessions() as db:
        assert db.get(WorkOrder, oid).assignee == "民一庭"
        assert db.scalar(select(func.count(WorkOrderHistory.id))) == 2


def test_concurrent_scheduler_passes_store_each_job_once(store):
    sessions, ctx, now = store
    with sessions() as db:
        for i in range(20):
            o = orders.create(db, ctx, actor=SUP, channel="letter", category="consult", content=f"#{i}")
            if i % 2:
                orders.apply_change(db, o, "dispatch", SUP, {"assignee": "民一庭"}, ctx, now[0])
        db.commit()
    now[0] = datetime(2026, 12, 10, 2, 0, tzinfo=UTC)  # every deadline passed
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(scheduler.run_once(sessions, ctx))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = [k for r in results for k in r]
    # dispatch_overdue ×10; 签收 reminder + escalation and feedback reminder + overdue ×10 (all unsigned)
    assert len(stored) == len(set(stored)) == 10 + 10 * 4
    assert scheduler.run_once(sessions, ctx) == []
    with sessions() as db:
        assert db.scalar(select(func.count(WorkOrderNotice.id))) == 50 + 10  # + the dispatch alerts
        assert db.scalar(select(func.count(WorkOrder.id)).where(WorkOrder.overdue.is_(True))) == 20


def test_concurrent_filings_get_the_days_numbers_in_turn(store):
    """8 operators file 5 orders each at once: every filing succeeds with its own number, 0001..0040, none
    skipped (SQLite's write lock, PostgreSQL's advisory lock serialise the day's next number)."""
    sessions, ctx, now = store
    start = threading.Barrier(8)
    numbers: list[str] = []
    errors: list[Exception] = []

    def operator(i: int) -> None:
        start.wait()
        for k in range(5):
            try:
                with sessions() as db:
                    o = orders.create(db, ctx, actor=SUP, channel="hotline", category="consult", content=f"{i}/{k}")
                    _time.sleep(0.005)  # the operator's transaction stays open a moment (notices, history)
                    db.commit()
                    numbers.append(o.number)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

    threads = [threading.Thread(target=operator, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(numbers) == [f"12368-20261130-{n:04d}" for n in range(1, 41)]


# ---------------------------------------------------------------------------------------------- intake, errors
def test_rate_limit_is_per_address_and_slides():
    now = [0.0]
    lim = RateLimit(2, window_s=3600, clock=lambda: now[0])
    assert lim.take("1.2.3.4") == 0 and lim.take("1.2.3.4") == 0
    assert lim.take("1.2.3.4") == 3600 and lim.take("5.6.7.8") == 0
    now[0] = 3601
    assert lim.take("1.2.3.4") == 0


def test_field_errors_are_chinese():
    errs = field_errors([
        {"type": "missing", "loc": ("body", "content"), "msg": "Field required"},
        {"type": "literal_error", "loc": ("body", "category"), "input": "x", "ctx": {"expected": "'consult'"}},
        {"type": "string_too_long", "loc": ("body", "tags", 0), "ctx": {"max_length": 32}},
        {"type": "greater_than_equal", "loc": ("body", "rating"), "ctx": {"ge": 1}},
    ])
    assert [e["message"] for e in errs] == [
        "诉求内容：必须填写", "未知的工单类别：x（可选：consult 咨询、query 查询、urge 催办、contact_judge 联络法官、"
        "complaint 投诉信访、suggestion 意见建议）", "标签：不能超过32个字", "满意度评价：不能小于1"]


def test_a_rolled_back_filing_leaves_nothing(store):
    """SQLite's driver would commit a row added in a savepoint outside a transaction; create() opens it first."""
    sessions, ctx, now = store
    with sessions() as db:
        orders.create(db, ctx, actor=SUP, channel="letter", category="consult", content="x")
        db.rollback()
    with sessions() as db:
        assert db.scalar(select(func.count(WorkOrder.id))) == 0
        assert db.scalar(select(func.count(WorkOrderHistory.id))) == 0


def test_departments_cli(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from hotline.cli import app

    monkeypatch.setenv("HOTLINE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HOTLINE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke
    assert run(app, ["users", "add", "hd1", "--role", "handler", "-p", "password123"]).exit_code == 0
    r = run(app, ["departments", "add", "民一庭", "hd1"])
    assert r.exit_code == 0, r.output
    r = run(app, ["departments", "add", "执行局", "nobody"])
    assert r.exit_code == 1 and "不是承办人账号：nobody" in r.output
    assert run(app, ["departments", "add", "民一庭"]).exit_code == 1  # exists
    assert run(app, ["departments", "add", "督办"]).exit_code == 1  # reserved for the supervisors
    r = run(app, ["departments", "list", "--json"])
    assert r.exit_code == 0 and r.output.splitlines() == ['{"name": "民一庭", "kind": "department", "active": true, '
                                                          '"members": ["hd1"]}']  # 执行局 was not added
