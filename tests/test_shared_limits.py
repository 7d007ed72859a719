"""Issue 17: login and public-tracking limits counted across two hubs that share a real Redis (TestClient apps on
one SQLite file); a Redis that goes away opens the limits instead of failing logins."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from agent_console.app import create_app
from agent_console.auth.passwords import use_hasher
from agent_console.auth.users import create_user
from agent_console.config import HubConfig
from hotline.db import make_engine, upgrade_engine

pytestmark = pytest.mark.timeout(60)
PASSWORD = "correct horse"


@pytest.fixture
def two_hubs(tmp_path, fresh_redis):
    previous = use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade_engine(engine)
    config = HubConfig(secret_key="k" * 32, worker_token="t" * 20, cookie_secure=False, track_per_minute=4,
                       redis_url=fresh_redis.url, redis_prefix="lim:")
    apps = [create_app(config, engine) for _ in range(2)]
    with apps[0].state.sessionmaker() as db:
        create_user(db, "op", "operator", PASSWORD)
        db.commit()
    clients = [TestClient(a, follow_redirects=False) for a in apps]
    yield clients
    for a in apps:
        a.state.ops.log.close()
    engine.dispose()
    use_hasher(previous)


def login(c: TestClient, password: str) -> int:
    return c.post("/api/auth/login", json={"username": "op", "password": password}).status_code


def test_failed_logins_on_one_hub_lock_the_name_on_the_other(two_hubs):
    a, b = two_hubs
    assert [login(x, "wrong") for x in (a, b, a, b, a)] == [401] * 5  # 5 failures for one name, spread over both
    r = b.post("/api/auth/login", json={"username": "op", "password": PASSWORD})
    assert r.status_code == 429 and "分钟后再试" in r.json()["detail"] and int(r.headers["Retry-After"]) > 200
    assert login(a, PASSWORD) == 429  # the right password too, on either hub, until the window has passed


def test_public_tracking_lookups_count_across_hubs(two_hubs):
    a, b = two_hubs
    codes = [x.get(f"/api/track/12368-20261130-{n:04d}?last4=0000").status_code
             for n, x in enumerate((a, b, a, b, a, b), start=1)]
    assert codes[:4] == [404] * 4 and codes[4:] == [429, 429]  # track_per_minute = 4 for the address, both hubs


def test_a_redis_that_goes_away_opens_the_limits_and_logins_still_work(two_hubs, fresh_redis):
    a, _ = two_hubs
    fresh_redis.stop()
    try:
        assert login(a, "wrong") == 401 and login(a, PASSWORD) == 200
    finally:
        fresh_redis.start()
