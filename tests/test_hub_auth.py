"""Login sessions, roles and the public/protected split of the hub, on a real SQLite file; what stores or reads
users and sessions runs on PostgreSQL too."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from agent_console.app import LOGIN_REDIRECT_PATHS, PUBLIC_PATHS, WEBSOCKET_PATHS, create_app
from agent_console.auth.passwords import use_hasher
from agent_console.auth.users import create_user, set_active
from agent_console.config import HubConfig
from agent_console.models import LoginSession, User, utcnow
from hotline.db import make_engine, upgrade_engine
from tests.pg_support import sqlite_only

TOKEN = "worker-token-for-tests"
PASSWORD = "correct horse"


@pytest.fixture(autouse=True)
def cheap_argon2():
    previous = use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    use_hasher(previous)


@pytest.fixture
def hub(migrated_db_url):
    engine = make_engine(migrated_db_url)
    app = create_app(HubConfig(secret_key="k" * 32, worker_token=TOKEN, cookie_secure=False, session_hours=2),
                     engine)
    with app.state.sessionmaker() as db:
        for name, role in [("op", "operator"), ("sup", "supervisor"), ("adm", "admin"), ("hd", "handler")]:
            create_user(db, name, role, PASSWORD, display_name=f"{name}用户")
        db.commit()
    yield app
    engine.dispose()


def client(app) -> TestClient:
    return TestClient(app, follow_redirects=False)


def login(c: TestClient, name: str, password: str = PASSWORD):
    return c.post("/api/auth/login", json={"username": name, "password": password})


def test_login_me_logout(hub):
    c = client(hub)
    assert c.get("/api/auth/me").status_code == 401
    r = login(c, "op")
    assert r.status_code == 200, r.text
    assert r.json()["user"]["username"] == "op" and r.json()["user"]["role"] == "operator"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("hotline_session=") and "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower() and "Secure" not in cookie and "Max-Age=7200" in cookie
    me = c.get("/api/auth/me")
    assert me.status_code == 200 and me.json()["display_name"] == "op用户"

    token = c.cookies["hotline_session"]
    with hub.state.sessionmaker() as db:
        stored = db.scalars(select(LoginSession.token_hash)).all()
    assert len(stored) == 1 and token not in stored[0]  # only the hash is stored

    assert c.post("/api/auth/logout").status_code == 204
    c.cookies.set("hotline_session", token)  # replaying the old cookie does not work
    r = c.get("/api/auth/me")
    assert r.status_code == 401 and r.json()["detail"] == "请先登录"
    with hub.state.sessionmaker() as db:
        assert db.scalars(select(LoginSession.revoked)).all() == [True]


def test_bad_credentials_and_disabled_user(hub):
    c = client(hub)
    for name, pw in [("op", "wrong password"), ("nobody", PASSWORD)]:
        r = login(c, name, pw)
        assert r.status_code == 401 and r.json()["detail"] == "用户名或密码错误"
        assert "set-cookie" not in r.headers
    r = c.post("/api/auth/login", json={"username": "op"})
    assert r.status_code == 422 and r.json()["detail"] == "请输入用户名和密码"

    assert login(c, "sup").status_code == 200
    with hub.state.sessionmaker() as db:
        set_active(db, "sup", False)
        db.commit()
    assert c.get("/api/auth/me").status_code == 401  # disabling ends the session
    r = login(c, "sup")
    assert r.status_code == 403 and r.json()["detail"] == "账号已停用"


@sqlite_only
def test_form_login_and_pages(hub):
    c = client(hub)
    r = c.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    page = c.get("/login")
    assert page.status_code == 200 and "用户名" in page.text and "密码" in page.text

    r = c.post("/api/auth/login", data={"username": "adm", "password": "nope"},
               headers={"accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"] == "/login?error=1"
    r = c.post("/api/auth/login", data={"username": "adm", "password": PASSWORD},
               headers={"accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    home = c.get("/")
    assert home.status_code == 200
    assert "12368 诉讼服务热线 — 控制台" in home.text and "adm用户" in home.text and "管理员" in home.text

    c2 = client(hub)  # a form post from a script gets JSON
    r = c2.post("/api/auth/login", data={"username": "op", "password": PASSWORD})
    assert r.status_code == 200 and r.json()["user"]["username"] == "op"


def test_secure_cookie_when_configured(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade_engine(engine)
    app = create_app(HubConfig(secret_key="k" * 32, worker_token=TOKEN), engine)
    with app.state.sessionmaker() as db:
        create_user(db, "op", "operator", PASSWORD)
        db.commit()
    r = login(client(app), "op")
    assert r.status_code == 200 and "Secure" in r.headers["set-cookie"]
    engine.dispose()


@sqlite_only
def test_roles_401_vs_403(hub):
    anonymous = client(hub)
    r = anonymous.get("/api/calls")
    assert r.status_code == 401 and r.json()["detail"] == "请先登录"
    for name in ("op", "sup", "adm"):
        c = client(hub)
        login(c, name)
        assert c.get("/api/calls").status_code == 200, name
    handler = client(hub)
    login(handler, "hd")
    r = handler.get("/api/calls")
    assert r.status_code == 403 and r.json()["detail"] == "权限不足"
    assert handler.get("/api/auth/me").status_code == 200


def test_expired_session_is_refused(hub):
    c = client(hub)
    login(c, "op")
    with hub.state.sessionmaker() as db:
        db.execute(update(LoginSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.commit()
    assert c.get("/api/auth/me").status_code == 401


def test_password_is_stored_as_argon2_hash(hub):
    with hub.state.sessionmaker() as db:
        h = db.scalars(select(User.password_hash).where(User.username == "op")).one()
    assert h.startswith("$argon2id$") and PASSWORD not in h


def walk_routes(routes, prefix: str = ""):
    """(path, methods) of every route; recent FastAPI keeps included routers unflattened."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from walk_routes(included.routes, prefix + getattr(context, "prefix", ""))
        elif getattr(route, "path", None) is not None:
            yield prefix + route.path, getattr(route, "methods", None) or {"GET"}


@sqlite_only
def test_every_route_needs_login_unless_public(hub):
    """Default deny: walk every route and call it without credentials."""
    c = client(hub)
    checked = 0
    paths = set()
    for path, methods in walk_routes(hub.routes):
        paths.add(path)
        if path in PUBLIC_PATHS:
            continue
        if path in WEBSOCKET_PATHS:  # the handshake is refused instead: tests/test_ops_ws.py
            continue
        url = path.replace("{call_id}", "x").replace("{entry_id}", "x").replace("{work_order_id}", "1")
        url = url.replace("{number}", "x").replace("{kind}", "report").replace("{name}", "x.wav")
        url = re.sub(r"\{\w+_id\}", "1", url)
        assert "{" not in url, f"add a sample value for {path}"
        for method in methods - {"HEAD", "OPTIONS"}:
            r = c.request(method, url)
            if path in LOGIN_REDIRECT_PATHS:
                assert r.status_code == 303 and r.headers["location"] == "/login", path
            else:
                assert r.status_code == 401, f"{method} {path} answered {r.status_code} without login"
            checked += 1
    assert checked >= 6
    assert {"/", "/api/auth/me", "/api/auth/logout", "/api/calls", "/api/calls/{call_id}",
            "/internal/events"} <= paths


@sqlite_only
def test_public_endpoints(hub):
    c = client(hub)
    h = c.get("/healthz")
    assert h.status_code == 200
    assert h.json()["status"] == "ok" and h.json()["database"] is True and h.json()["version"]
    # the API docs and metrics need a login (hub.public_docs / hub.public_metrics), or for /metrics the worker token
    for path in ("/docs", "/openapi.json", "/metrics"):
        r = c.get(path)
        assert r.status_code == 401 and r.json()["detail"] == "请先登录", path
    assert c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert login(c, "hd").status_code == 200
    assert c.get("/docs").status_code == 200
    spec = c.get("/openapi.json").json()
    assert {"/api/auth/login", "/api/calls", "/internal/events", "/healthz"} <= set(spec["paths"])
    m = c.get("/metrics")
    assert m.status_code == 200 and "hotline_hub_calls_open 0.0" in m.text
    assert 'hotline_hub_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in m.text


def test_docs_and_metrics_can_be_made_public(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'pub.db'}")
    upgrade_engine(engine)
    app = create_app(HubConfig(secret_key="k" * 32, worker_token=TOKEN, cookie_secure=False, public_docs=True,
                               public_metrics=True), engine)
    c = client(app)
    assert c.get("/docs").status_code == 200 and c.get("/metrics").status_code == 200
    engine.dispose()


def test_password_guessing_is_throttled_per_username(hub):
    c = client(hub)
    for _ in range(5):
        assert login(c, "op", "wrong").status_code == 401
    r = login(c, "op")  # even the right password waits: the account is under attack
    assert r.status_code == 429 and "登录失败次数过多" in r.json()["detail"], r.text
    assert int(r.headers["Retry-After"]) > 0
    assert login(c, "sup").status_code == 200  # another account from the same address is not locked out


def test_login_throttle_window_passes():
    from agent_console.auth.throttle import LoginThrottle

    now = [0.0]
    t = LoginThrottle(limit=2, address_limit=3, window_s=60, clock=lambda: now[0])
    t.failed("a", "1.2.3.4")
    assert t.retry_after("a", "1.2.3.4") == 0
    t.failed("a", "1.2.3.4")
    assert t.retry_after("a", "1.2.3.4") == 60
    t.failed("b", "1.2.3.4")
    assert t.retry_after("c", "1.2.3.4") == 60  # three failures from the address
    now[0] = 61
    assert t.retry_after("a", "1.2.3.4") == 0 and t.retry_after("c", "1.2.3.4") == 0
