"""A throw-away PostgreSQL cluster for the database tests (Debian ``postgresql``'s binaries, no system service).

One cluster per test session, started only when a test asks for it (``pg_cluster``), in a temporary directory,
listening on a free loopback port and a unix socket in that directory, ``fsync=off``. ``db_url`` (empty) and
``migrated_db_url`` are parametrized over SQLite and PostgreSQL: a test that takes one runs once on each, with a
database of its own (PostgreSQL: a new database, ~0.1 s, copied from a template migrated once per session).
Without the binaries or psycopg the PostgreSQL half is skipped, saying what to install.

initdb refuses to run as root: as root the cluster runs as the ``postgres`` user (the Debian package makes it).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hotline.db import make_engine, upgrade_engine
from tests.sipsupport import free_udp_port as _free_port  # TCP and UDP, outside the ephemeral range

try:
    import psycopg
    from psycopg import sql
except ImportError:  # the ``postgres`` extra is not installed: the PostgreSQL half is skipped
    psycopg = None

HEAD_TEMPLATE = "hotline_head"
OWNER_FILE = "owner.pid"  # the test process that started the cluster
POSTGRES_MISSING = "PostgreSQL is not installed (/usr/lib/postgresql/*/bin): scripts/setup.sh --dev installs it"


PSYCOPG_MISSING = "psycopg is not installed: pip install -e '.[postgres]' (scripts/setup.sh --dev does)"


#: on a test that takes ``db_url``/``migrated_db_url`` only for its setup, not to test the database: SQLite only
sqlite_only = pytest.mark.parametrize("db_backend", ["sqlite"])


def postgres_bin() -> Path | None:
    """The newest installed server's bin directory, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


class LocalPostgres:
    """A cluster in a temporary directory on 127.0.0.1:<free port> (or ``host``), trust authentication, user
    ``postgres``."""

    def __init__(self, *, prefix: str = "hotline-pg-", options: str = "", existing: Path | None = None,
                 host: str = "127.0.0.1") -> None:
        """A new cluster directory, or ``existing``: one left behind, to stop and remove."""
        self.host = host
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise RuntimeError(POSTGRES_MISSING)
        self.bin = bin_dir
        self.dir = existing or Path(tempfile.mkdtemp(prefix=prefix))
        self.port = _free_port()
        self.options = options
        self.as_postgres = os.geteuid() == 0
        if existing is None:
            (self.dir / OWNER_FILE).write_text(str(os.getpid()))  # see reap_orphans
            if self.as_postgres:
                shutil.chown(self.dir, "postgres", "postgres")
        self._names = itertools.count(1)

    def _run(self, *argv: object) -> None:
        cmd = [str(a) for a in argv]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{Path(str(argv[0])).name} failed: {done.stderr.strip()[-800:]}")

    def start(self) -> LocalPostgres:
        self._run(self.bin / "initdb", "-D", self.dir / "data", "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-sync", "--locale=C.UTF-8")
        if self.host != "127.0.0.1":  # other hosts of a test's own network namespaces connect too
            with open(self.dir / "data" / "pg_hba.conf", "a") as hba:
                hba.write(f"host all all {self.host.rsplit('.', 1)[0]}.0/24 trust\n")
        opts = (f"-c listen_addresses={self.host} -p {self.port} -k {self.dir} -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off {self.options}")
        self._run(self.bin / "pg_ctl", "-D", self.dir / "data", "-o", opts, "-l", self.dir / "pg.log", "-w", "start")
        return self

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{database}"

    def create_database(self, template: str | None = None, name: str | None = None) -> str:
        """A new database, empty or a copy of ``template`` (a database name); returns its SQLAlchemy URL."""
        name = name or f"t{next(self._names)}"
        with psycopg.connect(host=self.host, port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            copy = sql.SQL(" TEMPLATE {}").format(sql.Identifier(template)) if template else sql.SQL("")
            conn.execute(sql.SQL("CREATE DATABASE {}{}").format(sql.Identifier(name), copy))
        return self.url(name)

    def stop(self) -> None:
        try:
            if (self.dir / "data" / "postmaster.pid").exists():
                self._run(self.bin / "pg_ctl", "-D", self.dir / "data", "-m", "immediate", "stop")
        finally:
            for _ in range(3):  # the server's last processes may still be removing their files
                shutil.rmtree(self.dir, ignore_errors=True)
                if not self.dir.exists():
                    break
                time.sleep(0.5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans(prefix: str = "hotline-pg-") -> None:
    """Stop and remove clusters left by test sessions that were killed before their teardown (their owner
    process is gone); clusters of sessions still running are left alone."""
    for d in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            owner = int((d / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            LocalPostgres(existing=d).stop()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[LocalPostgres]:
    """The session's cluster, started on first use; the test is skipped when PostgreSQL is not installed."""
    if postgres_bin() is None:
        pytest.skip(POSTGRES_MISSING)
    if psycopg is None:
        pytest.skip(PSYCOPG_MISSING)
    reap_orphans()
    pg = LocalPostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()


@pytest.fixture(scope="session")
def pg_head_template(pg_cluster: LocalPostgres) -> str:
    """The name of a database migrated to head once per session, copied by ``migrated_db_url``."""
    url = pg_cluster.create_database(name=HEAD_TEMPLATE)
    engine = make_engine(url)
    try:
        upgrade_engine(engine)
    finally:
        engine.dispose()  # CREATE DATABASE ... TEMPLATE needs the template without connections
    return HEAD_TEMPLATE


@pytest.fixture(params=["sqlite", "postgresql"])
def db_backend(request) -> str:
    return request.param


@pytest.fixture
def new_db(request, db_backend: str, tmp_path: Path) -> Callable[..., str]:
    """Makes databases on this test's backend: ``new_db()`` empty, ``new_db(migrated=True)`` at the newest
    migration (SQLite: a new file in tmp_path; PostgreSQL: a new database, a copy of the session's template)."""
    files = itertools.count(1)

    def make(migrated: bool = False) -> str:
        if db_backend == "postgresql":
            cluster = request.getfixturevalue("pg_cluster")
            return cluster.create_database(template=request.getfixturevalue("pg_head_template") if migrated else None)
        url = f"sqlite:///{tmp_path / f'db{next(files)}.db'}"
        if migrated:
            engine = make_engine(url)
            try:
                upgrade_engine(engine)
            finally:
                engine.dispose()
        return url

    return make


@pytest.fixture
def db_url(new_db: Callable[..., str]) -> str:
    """An empty database for this test, once on SQLite and once on PostgreSQL."""
    return new_db()


@pytest.fixture
def migrated_db_url(new_db: Callable[..., str]) -> str:
    """Like ``db_url`` but already at the newest migration."""
    return new_db(migrated=True)
