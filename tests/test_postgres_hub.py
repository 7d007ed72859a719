"""`hotline hub` as a real process on PostgreSQL (``database_url = postgresql+psycopg://...``): it migrates the empty
database at start, users are added with ``hotline users add`` against the same database, an operator logs in,
files a work order through the API and reads it back (and finds it by a word in another letter case), a worker's
events become a call record, and nothing is written to a SQLite file in the hub's home. A database that cannot be
opened stops the hub at start, naming ``database_url``."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from hotline.db import DatabaseUnavailable, current_revision, head_revision, make_engine, open_migrated, session_factory
from ivr.contract import CallEnded, CallOffered
from tests.browser import Hub
from tests.ops_support import TOKEN, post_events
from tests.sipsupport import free_udp_port
from work_orders.models import WorkOrder

PASSWORD = "password123"
PHONE = "13812345678"


@pytest.fixture
def pg_hub(tmp_path, pg_cluster):
    url = pg_cluster.create_database()
    hub = Hub(tmp_path / "home")
    hub.env.update({"HOTLINE_DATABASE_URL": url, "HOTLINE_HUB__WORKER_TOKEN": TOKEN})
    hub.home.mkdir(parents=True)
    hub.add_user("op", "operator", PASSWORD)  # the CLI migrates the empty database first
    hub.start()
    yield hub, url
    hub.stop()


def test_a_hub_on_postgresql_files_and_reads_back_an_order(pg_hub):
    hub, url = pg_hub
    assert httpx.get(f"{hub.url}/healthz", timeout=5).json()["database"] is True
    with httpx.Client(base_url=hub.url, timeout=15) as op:
        r = op.post("/api/auth/login", json={"username": "op", "password": PASSWORD})
        assert r.status_code == 200, r.text
        r = op.post("/api/work_orders", json={"category": "consult", "channel": "hotline", "citizen_phone": PHONE,
                                               "content": "诉讼服务APP登录不上，验证码收不到"})
        assert r.status_code == 201, r.text
        filed = r.json()
        got = op.get(f"/api/work_orders/{filed['id']}")
        assert got.status_code == 200, got.text
        order = got.json()
        assert order["number"] == filed["number"] and order["number"].startswith("12368-")
        assert order["content"] == "诉讼服务APP登录不上，验证码收不到" and order["status"] == "received"
        created = datetime.fromisoformat(order["created_at"])
        assert created.utcoffset() == timedelta(0) and abs(datetime.now(UTC) - created) < timedelta(minutes=2)
        found = op.get("/api/work_orders", params={"q": "app"})
        assert found.status_code == 200 and [o["id"] for o in found.json()] == [filed["id"]]
        assert found.headers["X-Total-Count"] == "1"

        assert post_events(hub, [CallOffered(call_id="pg1", worker="w0", caller=PHONE, callee="12368",
                                             source="127.0.0.1:5070"),
                                 CallEnded(call_id="pg1", worker="w0", cause="caller_hangup", side="caller")]
                           ) == {"accepted": 2, "duplicates": 0}
        calls = op.get("/api/calls").json()
        assert [(c["call_id"], c["status"]) for c in calls] == [("pg1", "ended")]

    assert not list(hub.home.glob("*.db"))  # everything went to PostgreSQL
    engine = make_engine(url)
    try:
        assert current_revision(engine) == head_revision()
        with session_factory(engine)() as db:
            assert db.scalar(select(func.count(WorkOrder.id))) == 1
            assert db.scalar(select(WorkOrder.citizen_phone)) == PHONE
    finally:
        engine.dispose()


def test_a_wrong_database_url_stops_the_hub_naming_the_key(tmp_path, pg_cluster):
    hub = Hub(tmp_path / "home")
    hub.home.mkdir(parents=True)
    bad = f"postgresql+psycopg://postgres:secret-pw@127.0.0.1:{pg_cluster.port}/no_such_database"
    hub.env["HOTLINE_DATABASE_URL"] = bad
    r = subprocess.run([sys.executable, "-m", "hotline", "hub"], env=hub.env, cwd=hub.home, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "hub not started: database_url (HOTLINE_DATABASE_URL)" in r.stderr and "no_such_database" in r.stderr
    assert "secret-pw" not in r.stderr and "Traceback" not in r.stderr
    for url, says in ((f"postgresql+psycopg://postgres@127.0.0.1:{free_udp_port()}/x", "Connection refused"),
                      ("postgres://postgres@127.0.0.1/x", "Can't load plugin")):
        with pytest.raises(DatabaseUnavailable, match=f"^database_url .*{says}"):
            open_migrated(url)
