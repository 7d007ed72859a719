"""A throw-away Redis server for the tests of state shared by several hubs (Debian ``redis-server``, no service).

Started on a free loopback port in a temporary directory with an append-only file (as production should run), so
``stop()`` and ``start()`` again on the same port take Redis away for a while without losing its data. Without the
binary or redis-py the tests are skipped, saying what to install.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sipsupport import free_udp_port

try:
    import redis
except ImportError:  # the ``redis`` extra is not installed
    redis = None

REDIS_MISSING = "redis-server is not installed: scripts/setup.sh --dev installs it"
REDIS_PY_MISSING = "redis-py is not installed: pip install -e '.[redis]' (scripts/setup.sh --dev does)"


class LocalRedis:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hotline-redis-"))
        self.port = free_udp_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> LocalRedis:
        log = open(self.dir / "redis.log", "ab")  # noqa: SIM115 - owned by the child
        try:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
                 "--appendfsync", "always", "--dir", str(self.dir)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        client = redis.Redis.from_url(self.url, socket_timeout=0.5)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer: {(self.dir / 'redis.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def flush(self) -> None:
        redis.Redis.from_url(self.url).flushall()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip(REDIS_MISSING)
    if redis is None:
        pytest.skip(REDIS_PY_MISSING)
    server = LocalRedis().start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def fresh_redis(redis_server: LocalRedis) -> LocalRedis:
    """The session's Redis, emptied (and running) for this test."""
    if redis_server.proc is None:
        redis_server.start()
    redis_server.flush()
    return redis_server
