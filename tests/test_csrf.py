"""Issue 15, item 3: cross-site requests with the session cookie change nothing (agent_console/guards/origin.py).

The hub app on a real SQLite file with TestClient; a logged-in admin's cookie rides along on every request, as a
browser would send it to a page on the same site (SameSite=Lax does not stop another port or subdomain). Each
refused request is paired with the same request from the hub's own origin, which does change things — so the
refusal is what kept the data as it was."""

from __future__ import annotations

import json

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.websockets import WebSocketDisconnect

from agent_console.app import create_app
from agent_console.auth.passwords import use_hasher
from agent_console.auth.users import create_user
from agent_console.config import HubConfig
from hotline.db import make_engine, upgrade_engine
from ivr.contract import CallOffered, EventBatch
from knowledge_base.io import DEFAULT_KB_PATH
from work_orders.models import WorkOrder

TOKEN = "worker-token-for-csrf-tests"
SELF = "http://testserver"
EVIL = "http://evil.example"
SAME_SITE_OTHER_PORT = "http://testserver:8080"
ORDER = {"category": "consult", "content": "如何申请诉讼费缓交", "citizen_phone": "13800000002", "channel": "walk_in"}


@pytest.fixture
def app(tmp_path):
    previous = use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade_engine(engine)
    app = create_app(HubConfig(secret_key="k" * 32, worker_token=TOKEN, cookie_secure=False,
                               allowed_origins=("https://console.court.example",)), engine)
    with app.state.sessionmaker() as db:
        create_user(db, "adm", "admin", "correct horse")
        db.commit()
    yield app
    engine.dispose()
    use_hasher(previous)


@pytest.fixture
def admin(app):
    with TestClient(app, follow_redirects=False) as c:
        assert c.post("/api/auth/login", json={"username": "adm", "password": "correct horse"}).status_code == 200
        yield c


def orders(app) -> int:
    with app.state.sessionmaker() as db:
        return db.scalar(select(func.count()).select_from(WorkOrder))


def kb_count(c: TestClient) -> int:
    r = c.get("/api/kb/entries")
    assert r.status_code == 200, r.text
    return r.json()["total"]


def test_a_cross_origin_form_post_replacing_the_knowledge_base_changes_nothing(app, admin):
    data = DEFAULT_KB_PATH.read_bytes()
    before = kb_count(admin)
    for origin in (EVIL, SAME_SITE_OTHER_PORT, "null"):
        r = admin.post("/api/kb/import?replace=true", files={"file": ("kb.json", data, "application/json")},
                       headers={"Origin": origin})
        assert r.status_code == 403 and "跨站请求已拒绝" in r.json()["detail"], (origin, r.text)
    r = admin.post("/api/kb/import?replace=true", files={"file": ("kb.json", data, "application/json")},
                   headers={"Referer": EVIL + "/attack.html"})  # no Origin: the Referer decides
    assert r.status_code == 403
    assert kb_count(admin) == before
    ok = admin.post("/api/kb/import?replace=true", files={"file": ("kb.json", data, "application/json")},
                    headers={"Origin": SELF})
    assert ok.status_code == 200, ok.text
    assert kb_count(admin) > before


def test_a_cross_origin_fetch_with_credentials_changes_nothing(app, admin):
    r = admin.post("/api/work_orders", json=ORDER, headers={"Origin": EVIL})
    assert r.status_code == 403 and orders(app) == 0
    # JSON sent as text/plain (what a cross-site form or a no-preflight fetch can send): refused, even same-origin
    r = admin.post("/api/work_orders", content=json.dumps(ORDER), headers={"Content-Type": "text/plain",
                                                                           "Origin": SELF})
    assert r.status_code == 415 and "application/json" in r.json()["detail"] and orders(app) == 0
    r = admin.post("/api/work_orders", content=json.dumps(ORDER))  # no content type at all
    assert r.status_code == 415 and orders(app) == 0
    r = admin.post("/api/auth/logout", headers={"Origin": EVIL})  # logging someone out is a change too
    assert r.status_code == 403 and admin.get("/api/auth/me").status_code == 200
    assert admin.post("/api/work_orders", json=ORDER, headers={"Origin": SELF}).status_code == 201
    assert admin.post("/api/work_orders", json=ORDER, headers={"Origin": "https://console.court.example"}
                      ).status_code == 201  # hub.allowed_origins
    assert admin.post("/api/work_orders", json=ORDER).status_code == 201  # a non-browser client (no Origin)
    assert orders(app) == 3


def test_cross_site_websocket_is_refused_and_worker_routes_are_exempt(app, admin):
    with pytest.raises(WebSocketDisconnect), admin.websocket_connect("/ws/operator", headers={"Origin": EVIL}) as ws:
        ws.receive_text()
    with admin.websocket_connect("/ws/operator", headers={"Origin": SELF}) as ws:
        assert ws.receive_json()  # the console's first message
    batch = EventBatch(events=[CallOffered(call_id="c1", worker="w0", caller="13800000002", callee="12368",
                                           source="x")]).model_dump(mode="json")
    r = admin.post("/internal/events", json=batch, headers={"Origin": EVIL, "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text  # the workers' bearer-token routes are not cookie-authenticated
