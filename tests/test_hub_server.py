"""The hub served by real uvicorn on 127.0.0.1 (as ``run_hub`` does), talked to with httpx."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from agent_console.auth.passwords import use_hasher
from agent_console.auth.users import create_user
from hotline.db import make_engine, session_factory
from hotline.hub_main import build_server
from hotline.settings import load_settings
from ivr.contract import CallEnded, CallOffered, EventBatch, WorkerLost
from tests.sipsupport import free_udp_port as free_port  # TCP and UDP, outside the ephemeral range

SRC = "127.0.0.1:5099"


@pytest.fixture
def served(tmp_path, monkeypatch):
    for var in ("HOTLINE_CONFIG", "HOTLINE_HOME", "HOTLINE_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    previous = use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    port = free_port()
    cfg = tmp_path / "hotline.toml"
    cfg.write_text(f'home = "{tmp_path / "var"}"\n[log]\nlevel = "warning"\n'
                   f'[hub]\nport = {port}\ncookie_secure = false\n')
    settings = load_settings(Path(cfg))
    server = build_server(settings)  # migrates the database
    engine = make_engine(settings.db_url)
    with session_factory(engine)() as db:
        create_user(db, "sup", "supervisor", "password1")
        db.commit()
    engine.dispose()
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "hub did not start"
        time.sleep(0.02)
    yield settings, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    server.config.app.state.engine.dispose()
    use_hasher(previous)


def test_served_hub_end_to_end(served):
    settings, base = served
    worker_token = settings.secret("worker_token")
    assert len(worker_token) >= 16  # generated once and kept under home/secrets
    assert (settings.home / "secrets" / "worker_token").exists()
    with httpx.Client(base_url=base, timeout=5) as c:
        h = c.get("/healthz").json()
        assert h["status"] == "ok" and h["database"] is True

        batch = EventBatch(events=[
            CallOffered(call_id="x1", worker="w7", caller="13900000000", callee="12368", source=SRC),
            CallOffered(call_id="x2", worker="w7", caller="13900000001", callee="12368", source=SRC),
            CallEnded(call_id="x2", worker="w7", cause="ivr_hangup", side="ivr"),
            WorkerLost(worker="w7"),
        ])
        r = c.post("/internal/events", json=batch.model_dump(mode="json"),
                   headers={"Authorization": f"Bearer {worker_token}"})
        assert r.status_code == 200 and r.json() == {"accepted": 4, "duplicates": 0}

        assert c.get("/api/calls").status_code == 401
        r = c.post("/api/auth/login", data={"username": "sup", "password": "password1"})
        assert r.status_code == 200, r.text
        calls = {x["call_id"]: x for x in c.get("/api/calls").json()}
        assert calls["x1"]["end_cause"] == "worker_lost" and calls["x2"]["end_cause"] == "ivr_hangup"
        assert "12368 诉讼服务热线 — 控制台" in c.get("/").text
        assert "hotline_hub_calls_open 0.0" in c.get("/metrics").text
