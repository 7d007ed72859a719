"""The hub's case endpoints on a real SQLite file with the demo cases: /internal/cases/lookup and /verify for
IVR workers (worker token; found / not found / invalid; the status only after verification; tickets), the
lock-out after 3 failures per caller and per case that survives a hub restart and ends at the court's
midnight, attempts recorded without the secret, and the staff view with masked party names. Every test that
stores or reads runs on PostgreSQL too."""

from __future__ import annotations

import shutil
import threading
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from agent_console.app import create_app
from agent_console.auth.passwords import use_hasher
from agent_console.auth.users import create_user
from agent_console.cases.desk import CaseDesk
from agent_console.config import HubConfig
from court_cases.demo import DemoCaseStore, load_demo_if_empty
from court_cases.models import VerifyAttempt
from court_cases.settings import CaseSettings
from court_cases.spoken import SAY_INVALID, SAY_LOCKED, SAY_NOT_FOUND
from hotline.db import make_engine, session_factory, upgrade_engine
from tests.pg_support import sqlite_only

TOKEN = "worker-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
N1234 = "（2026）粤0305民初1234号"  # demo: 查询密码 123456, parties' ID digits 11001X / 220018, hearing 2027-03-05
N1888 = "（2025）粤0305执1888号"  # demo: enforcement with a refund status, 查询密码 188888
CALLER = "13800000000"


def _fill(engine) -> None:
    previous = use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    try:
        with session_factory(engine)() as db:
            assert load_demo_if_empty(db) == 10
            create_user(db, "op", "operator", "password1")
            create_user(db, "adm", "admin", "password1")
            db.commit()
    finally:
        use_hasher(previous)


@pytest.fixture(scope="module")
def templates(request, tmp_path_factory):
    """Makes, once per backend, a migrated database with the demo cases and two users, copied for each test
    (hashing is slow on purpose): SQLite a file, PostgreSQL a template database."""
    made: dict[str, str] = {}

    def get(backend: str) -> str:
        if backend in made:
            return made[backend]
        if backend == "sqlite":
            path = tmp_path_factory.mktemp("template") / "hub.db"
            engine = make_engine(f"sqlite:///{path}")
            upgrade_engine(engine)
        else:
            cluster = request.getfixturevalue("pg_cluster")
            engine = make_engine(cluster.create_database(template=request.getfixturevalue("pg_head_template")))
        try:
            _fill(engine)
            if backend == "sqlite":
                with engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            engine.dispose()
        made[backend] = str(path) if backend == "sqlite" else engine.url.database
        return made[backend]

    return get


@pytest.fixture
def db_url(request, templates, db_backend, tmp_path):
    """A copy of the template on this test's backend."""
    if db_backend == "sqlite":
        shutil.copyfile(templates("sqlite"), tmp_path / "hub.db")
        return f"sqlite:///{tmp_path / 'hub.db'}"
    return request.getfixturevalue("pg_cluster").create_database(template=templates("postgresql"))


class Hub:
    """One hub process's app on the database (a new Hub on the same URL is a restarted hub)."""

    def __init__(self, url: str, cases: CaseSettings | None = None) -> None:
        self.engine = make_engine(url)
        self.app = create_app(HubConfig(secret_key="k" * 32, worker_token=TOKEN, cookie_secure=False,
                                        cases=cases or CaseSettings()), self.engine)
        self.client = TestClient(self.app)

    def lookup(self, number: str, **kw) -> dict:
        r = self.client.post("/internal/cases/lookup", json={"number": number, **kw}, headers=AUTH)
        assert r.status_code == 200, r.text
        return r.json()

    def verify(self, number: str, secret: str, caller: str = CALLER, **kw) -> dict:
        body = {"number": number, "secret": secret, "caller": caller, **kw}
        r = self.client.post("/internal/cases/verify", json=body, headers=AUTH)
        assert r.status_code == 200, r.text
        return r.json()

    def close(self) -> None:
        self.client.close()
        self.engine.dispose()


@pytest.fixture
def hub(db_url):
    h = Hub(db_url)
    yield h
    h.close()


@sqlite_only  # no SQL of its own
def test_internal_endpoints_refuse_a_missing_or_wrong_token(hub):
    for path, body in (("/internal/cases/lookup", {"number": N1234}),
                       ("/internal/cases/verify", {"number": N1234, "secret": "123456", "caller": CALLER})):
        assert hub.client.post(path, json=body).status_code == 401
        assert hub.client.post(path, json=body, headers={"Authorization": "Bearer wrong-token"}).status_code == 401
        assert hub.client.post(path, json=body, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    with hub.app.state.sessionmaker() as db:
        assert db.scalar(select(VerifyAttempt.id)) is None  # nothing was tried


def test_lookup_reads_back_but_tells_nothing_before_verification(hub):
    r = hub.lookup("2026*440305*1*1234#")
    assert r["result"] == "found" and r["kind"] == "case" and r["case_number"] == N1234
    assert r["readback"] == r["say"] == "您输入的案号是：二零二六年粤零三零五民初一二三四号。"
    assert r["verified"] is False and r["status"] is None and r["case"] is None
    r = hub.lookup("26011234")
    assert r["kind"] == "lookup" and r["case_number"] == N1234 and r["say"] == "您输入的查询号是：二六零一一二三四。"
    r = hub.lookup("2099*440305*1*1#")
    assert r["result"] == "not_found" and r["number"] == "（2099）粤0305民初1号" and r["say"] == SAY_NOT_FOUND
    r = hub.lookup("12*34")
    assert r["result"] == "invalid" and r["say"] == SAY_INVALID
    bad = hub.client.post("/internal/cases/lookup", json={"numbr": "1"}, headers=AUTH)
    assert bad.status_code == 422


def test_verify_then_the_status_and_a_ticket_for_the_rest_of_the_call(hub):
    r = hub.verify("2026*440305*1*1234#", "000000")
    assert r["result"] == "wrong" and r["tries_left"] == 2 and r["say"] == "验证未通过，您还可以再试两次。"
    assert r["status"] is None and r["ticket"] is None
    r = hub.verify("2026*440305*1*1234#", "11001*", call_id="call-1")  # last 6 of an ID, keypad * = X
    assert r["result"] == "ok" and r["case_number"] == N1234
    assert r["say"] == r["status"] == (
        "您查询的案件，案由是民间借贷纠纷，目前正在审理中。下次开庭时间是二零二七年三月五日，星期五，上午九点三十分，"
        "地点在第三法庭。承办法官是王明，书记员是陈静，承办部门是民一庭。")
    assert r["status_parts"] == ["您查询的案件，案由是民间借贷纠纷，目前正在审理中。",
                                 "下次开庭时间是二零二七年三月五日，星期五，上午九点三十分，地点在第三法庭。",
                                 "承办法官是王明，书记员是陈静，承办部门是民一庭。"]
    assert r["case"] == {"case_number": N1234, "stage": "in_trial", "stage_name": "审理中", "judge": "王明",
                         "clerk": "陈静", "department": "民一庭", "judge_team_line": "sip:8101@pbx.court.example"}
    ticket = r["ticket"]
    again = hub.lookup("26011234", caller=CALLER, ticket=ticket)  # 重听, or menus 3/4 later in the call
    assert again["verified"] is True and again["status"] == r["status"] and again["case"]["judge"] == "王明"
    assert hub.lookup(N1234, caller="13900000000", ticket=ticket)["verified"] is False  # another caller
    assert hub.lookup(N1888, caller=CALLER, ticket=ticket)["verified"] is False  # another case
    forged = ticket[:-3] + ("AAA" if not ticket.endswith("AAA") else "BBB")
    assert hub.lookup(N1234, caller=CALLER, ticket=forged)["verified"] is False
    r = hub.verify(N1888, "188888")
    assert "执行情况：已冻结被执行人银行存款八万元" in r["status"]
    assert "退费情况：执行款五万元已于二零二七年二月十日转入申请执行人账户" in r["status"]
    with hub.app.state.sessionmaker() as db:
        rows = [(a.caller, a.case_number, a.result, a.call_id)
                for a in db.scalars(select(VerifyAttempt).order_by(VerifyAttempt.id))]
    assert rows == [(CALLER, N1234, "wrong", None), (CALLER, N1234, "ok", "call-1"), (CALLER, N1888, "ok", None)]


@sqlite_only  # no SQL of its own
def test_ticket_expires(hub):
    ticket = hub.verify(N1234, "123456")["ticket"]
    desk = hub.app.state.cases_desk
    assert desk.tickets.valid(ticket, N1234, CALLER)
    assert not desk.tickets.valid(ticket, N1234, CALLER, now=datetime.now(UTC).timestamp() + 31 * 60)


def test_three_failures_lock_the_case_and_the_caller_and_survive_a_restart(db_url, tmp_path):
    a = Hub(db_url)
    try:
        assert a.verify(N1234, "111111")["tries_left"] == 2
        assert a.verify(N1234, "222222")["tries_left"] == 1
        r = a.verify(N1234, "333333")
        assert r["result"] == "locked" and r["tries_left"] == 0 and r["say"] == SAY_LOCKED
        assert a.verify(N1234, "123456")["result"] == "locked"  # even the right password, today
    finally:
        a.close()
    b = Hub(db_url)  # the hub restarts on the same database
    try:
        r = b.verify(N1234, "123456")
        assert r["result"] == "locked" and r["status"] is None and r["ticket"] is None
        assert b.verify(N1234, "123456", caller="13900000000")["result"] == "locked"  # per case: any caller
        assert b.verify(N1888, "188888")["result"] == "locked"  # per caller: any case
        assert b.verify(N1888, "188888", caller="13900000000")["result"] == "ok"
    finally:
        b.close()
    c = Hub(db_url, CaseSettings(lock_scope="case"))
    try:
        assert c.verify(N1888, "188888")["result"] == "ok"  # only cases are counted now
        assert c.verify(N1234, "123456", caller="13700000000")["result"] == "locked"
    finally:
        c.close()
    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as db:
            results = [a.result for a in db.scalars(select(VerifyAttempt).where(VerifyAttempt.case_number == N1234)
                                                     .order_by(VerifyAttempt.id))]
        assert results == ["wrong", "wrong", "wrong", "locked", "locked", "locked", "locked"]
        if engine.dialect.name == "sqlite":
            raw = (tmp_path / "hub.db").read_bytes()
            wal = tmp_path / "hub.db-wal"
            raw += wal.read_bytes() if wal.exists() else b""
        else:
            with engine.connect() as conn:  # every column of every attempt as text
                raw = "".join(conn.execute(text("SELECT v::text FROM case_verify_attempts v")).scalars()).encode()
            assert CALLER.encode() in raw
    finally:
        engine.dispose()
    for typed in (b"111111", b"222222", b"333333"):
        assert typed not in raw  # attempts never keep what was typed


def test_the_lock_ends_at_the_courts_midnight_and_a_success_resets_the_count(hub):
    now = [datetime(2027, 3, 1, 15, 50, tzinfo=UTC)]  # 23:50 in Beijing
    desk = CaseDesk(DemoCaseStore(hub.app.state.sessionmaker), hub.app.state.sessionmaker, CaseSettings(),
                    secret_key="k" * 32, tz="Asia/Shanghai", clock=lambda: now[0])
    hub.app.state.cases_desk = desk
    assert hub.verify(N1234, "111111")["tries_left"] == 2
    assert hub.verify(N1234, "222222")["tries_left"] == 1
    assert hub.verify(N1234, "123456")["result"] == "ok"  # the right one resets the count
    assert hub.verify(N1234, "111111")["tries_left"] == 2
    assert hub.verify(N1234, "222222")["tries_left"] == 1
    assert hub.verify(N1234, "333333")["result"] == "locked"
    now[0] += timedelta(minutes=9)  # 23:59
    assert hub.verify(N1234, "123456")["result"] == "locked"
    now[0] += timedelta(minutes=2)  # 00:01 the next day in Beijing (16:01 UTC, still the same UTC day)
    r = hub.verify(N1234, "123456")
    assert r["result"] == "ok" and "下次开庭时间" in r["status"]


def test_parallel_guesses_cannot_exceed_the_limit(hub):
    results: list[str] = []

    def guess(i: int) -> None:
        results.append(hub.verify(N1888, f"00000{i}", caller=f"1390000000{i}")["result"])

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["locked"] * 4 + ["wrong"] * 2
    with hub.app.state.sessionmaker() as db:
        wrong = [a for a in db.scalars(select(VerifyAttempt)) if a.result == "wrong"]
    assert len(wrong) == 3


def test_unknown_case_counts_as_a_wrong_secret(hub):
    assert hub.verify("（2099）粤0305民初1号", "123456")["result"] == "wrong"
    assert hub.verify("99999999", "123456")["result"] == "wrong"  # an unknown lookup number
    assert hub.verify("垃圾", "123456")["result"] == "invalid"  # not counted
    assert hub.verify(N1234, "000000")["result"] == "locked"  # the caller's third failure today
    assert hub.verify(N1234, "123456")["result"] == "locked"
    assert hub.verify(N1234, "123456", caller="13900000000")["result"] == "ok"  # the case had one failure


@sqlite_only  # no SQL of its own
def test_staff_view_masks_names_for_operators(hub):
    assert hub.client.get(f"/api/cases/{N1234}").status_code == 401
    hub.verify(N1234, "000000")
    c = hub.client
    assert c.post("/api/auth/login", json={"username": "op", "password": "password1"}).status_code == 200
    doc = c.get("/api/cases/2026*440305*1*1234").json()
    assert doc["case_number"] == N1234 and doc["stage_name"] == "审理中" and "王明" in doc["status"]
    assert [p["name"] for p in doc["parties"]] == ["张*", "李*"]
    assert doc["verification"]["failures_today"] == 1 and not doc["verification"]["locked_today"]
    assert doc["verification"]["recent"][0]["caller"] == "*********00"
    assert c.get("/api/cases/2099*440305*1*1").status_code == 404
    assert c.get("/api/cases/nonsense").status_code == 422
    c.post("/api/auth/logout")
    assert c.post("/api/auth/login", json={"username": "adm", "password": "password1"}).status_code == 200
    doc = c.get("/api/cases/26011234").json()
    assert [p["name"] for p in doc["parties"]] == ["张伟", "李强"]
    assert doc["verification"]["recent"][0]["caller"] == CALLER
