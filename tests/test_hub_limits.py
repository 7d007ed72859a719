"""Issue 15, item 4: what unauthenticated clients cannot grow or reach, and what a logged-out operator keeps.

The hub app on a real SQLite file (TestClient): request bodies are refused by size before parsing; the login
throttle and the metrics labels stay bounded under floods of made-up names and methods; order numbers go past
9,999 a day; an operator's console socket closes within 5 s of a logout or a disabled account; security headers
on every page; public order tracking is throttled per address and needs the phone's last four digits, with a
lock-out per order after wrong ones."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from agent_console.app import create_app
from agent_console.auth.passwords import use_hasher
from agent_console.auth.throttle import LoginThrottle
from agent_console.auth.users import create_user, set_active
from agent_console.config import HubConfig
from agent_console.work_orders.intake import TRACK_FAILS_PER_HOUR, RateLimit
from hotline.db import make_engine, upgrade_engine
from work_orders import store as orders
from work_orders.models import WorkOrder
from work_orders.numbering import format_number
from work_orders.rules import Actor

TOKEN = "worker-token-for-limit-tests"
PASSWORD = "correct horse"


@pytest.fixture
def app(tmp_path):
    previous = use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade_engine(engine)
    app = create_app(HubConfig(secret_key="k" * 32, worker_token=TOKEN, cookie_secure=False, track_per_minute=5),
                     engine)
    with app.state.sessionmaker() as db:
        for name, role in (("op", "operator"), ("adm", "admin")):
            create_user(db, name, role, PASSWORD)
        db.commit()
    yield app
    engine.dispose()
    use_hasher(previous)


def logged_in(app, name: str) -> TestClient:
    c = TestClient(app, follow_redirects=False)
    assert c.post("/api/auth/login", json={"username": name, "password": PASSWORD}).status_code == 200
    return c


def test_bodies_over_the_limit_are_refused_before_parsing(app):
    c = TestClient(app)
    big = json.dumps({"category": "consult", "content": "x" * (2 << 20)})
    r = c.post("/api/submit", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "请求内容过大" in r.json()["detail"], r.text

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b"x" * 65536

    r = c.post("/api/auth/login", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
    adm = logged_in(app, "adm")  # the KB import has its own, larger limit: 3 MB reaches the route (and is no KB)
    r = adm.post("/api/kb/import", files={"file": ("kb.json", b" " * (3 << 20), "application/json")})
    assert r.status_code == 422, r.text
    r = adm.post("/api/kb/import", files={"file": ("kb.json", b" " * (30 << 20), "application/json")})
    assert r.status_code == 413


def test_the_login_throttle_and_metrics_labels_stay_bounded():
    t = LoginThrottle(max_keys=1000)
    for i in range(20_000):
        t.failed(f"made-up-{i}", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(t) <= 1000
    t.failed("victim", "1.2.3.4")
    assert t.retry_after("nobody-asked", "9.9.9.9") == 0 and len(t) <= 1000  # asking stores nothing


def test_unknown_methods_share_one_metrics_label(app):
    c = TestClient(app)
    for i in range(50):
        c.request(f"X{i}", "/healthz")
    text = c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert 'method="other"' in text and 'method="X1"' not in text


def test_order_numbers_go_past_9999_a_day(app):
    ctx = app.state.work_orders
    now = datetime(2026, 11, 30, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
    day = ctx.calendar.local_date(now)
    sup = Actor("sup", "supervisor")
    with app.state.sessionmaker() as db:
        first = orders.create(db, ctx, actor=sup, now=now, category="consult", content="第一件")
        db.flush()
        first.number = format_number(day, 9999)  # as if 9,998 more had been filed that day
        db.commit()
        numbers = []
        for k in range(3):
            o = orders.create(db, ctx, actor=sup, now=now, category="consult", content=f"第{k}件")
            db.commit()
            numbers.append(o.number)
        assert db.scalar(select(WorkOrder.number).where(WorkOrder.id == first.id)).endswith("-9999")
    assert numbers == [format_number(day, n) for n in (10000, 10001, 10002)], numbers


@pytest.mark.parametrize("how", ["disabled", "logged_out"])
def test_the_operator_socket_closes_within_5_s_of_the_login_ending(app, how):
    c = logged_in(app, "op")
    closed_after: list[float] = []
    with c.websocket_connect("/ws/operator") as ws:
        assert ws.receive_json()["type"] == "welcome"
        ws.send_json({"type": "hello", "resume_from": 0})
        ws.receive_json()  # the snapshot
        if how == "disabled":
            with app.state.sessionmaker() as db:
                set_active(db, "op", False)
                db.commit()
        else:
            other = TestClient(app, cookies=dict(c.cookies))
            assert other.post("/api/auth/logout").status_code == 204
        t0 = time.monotonic()
        last: dict = {}

        def read() -> None:
            nonlocal last
            try:
                while True:
                    last = ws.receive_json()
            except WebSocketDisconnect:
                closed_after.append(time.monotonic() - t0)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(8)
    assert closed_after and closed_after[0] < 5.0, closed_after
    assert last.get("code") == "session_ended" and "重新登录" in last.get("message", ""), last


def test_security_headers_and_a_csp_on_the_console_pages(app):
    c = logged_in(app, "adm")
    for path in ("/", "/login", "/kb", "/orders", "/wallboard", "/api/auth/me"):
        r = c.get(path)
        assert r.status_code == 200, path
        h = r.headers
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY", path
        assert h["referrer-policy"] == "same-origin" and "frame-ancestors 'none'" in h["content-security-policy"]
        assert "connect-src 'self' ws: wss:" in h["content-security-policy"]


def test_public_tracking_is_throttled_per_address(app):
    c = TestClient(app)
    codes = [c.get(f"/api/track/12368-20261130-{n:04d}?last4=0000").status_code for n in range(1, 8)]
    assert codes[:5] == [404] * 5 and codes[5:] == [429, 429], codes
    r = c.get("/track/12368-20261130-0009?last4=0000")
    assert r.status_code == 429 and "查询过于频繁" in r.text and int(r.headers["Retry-After"]) > 0


def test_tracking_needs_the_phones_last_four_digits_and_locks_an_order_after_wrong_ones(app):
    """Sequential numbers alone show nothing; 5 wrong guesses lock that order's page for the hour, not others."""
    ctx = app.state.work_orders
    sup = Actor("sup", "supervisor")
    with app.state.sessionmaker() as db:
        made = [orders.create(db, ctx, actor=sup, category="consult", content=f"第{k}件", citizen_phone=phone)
                for k, phone in enumerate(("138 0013 8000", "13900004321", ""))]
        db.commit()
        target, other, no_phone = (o.number for o in made)
    app.state.track_limit = RateLimit(1000, window_s=60.0)  # the per-address throttle is the other test's
    c = TestClient(app)
    assert c.get(f"/api/track/{target}").status_code == 400  # the number alone
    assert "后四位" in c.get(f"/api/track/{target}").json()["detail"]
    ok = c.get(f"/api/track/{target}?last4=8000")
    assert ok.status_code == 200 and ok.json()["number"] == target and "8000" not in ok.text
    assert c.get(f"/api/track/{no_phone}?last4=0000").status_code == 404  # no phone on file: not public
    wrong = [c.get(f"/api/track/{target}?last4={n:04d}") for n in range(1, TRACK_FAILS_PER_HOUR + 1)]
    assert [r.status_code for r in wrong] == [404] * TRACK_FAILS_PER_HOUR
    assert wrong[0].json()["detail"] == c.get(f"/api/track/{other}?last4=0000").json()["detail"]  # no hint which
    locked = c.get(f"/api/track/{target}?last4=8000")  # even the right digits, for the rest of the hour
    assert locked.status_code == 429 and "失败次数过多" in locked.json()["detail"]
    assert "失败次数过多" in c.get(f"/track?number={target}&last4=8000").text
    assert c.get(f"/api/track/{other}?last4=4321").status_code == 200  # other orders are not locked
    page = c.get(f"/track/{other}?last4=4321")
    assert page.status_code == 200 and "已受理，等待转办" in page.text and "4321" not in page.text
