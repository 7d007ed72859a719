"""Issue 15 (low): an empty secret never becomes a key that anybody holds."""

from __future__ import annotations

from fastapi.testclient import TestClient

from agent_console.app import create_app
from agent_console.config import HubConfig
from hotline.db import make_engine, upgrade_engine
from hotline.settings import Settings


def test_an_emptied_secrets_file_is_replaced(tmp_path):
    s = Settings(home=tmp_path)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "worker_token").write_text("  \n")
    token = s.secret("worker_token")
    assert len(token) >= 32 and s.secret("worker_token") == token


def test_an_empty_worker_token_lets_nobody_in(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade_engine(engine)
    app = create_app(HubConfig(secret_key="k" * 32, worker_token="", cookie_secure=False), engine)
    c = TestClient(app)
    for auth in ("Bearer ", "Bearer", "Bearer  "):
        r = c.post("/internal/events", json={"v": 1, "events": []}, headers={"Authorization": auth})
        assert r.status_code == 401, (auth, r.status_code)
    engine.dispose()
