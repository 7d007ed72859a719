"""Issue 15 (Low): the hub's ordered writer no longer drops a write that failed for a passing reason.

A real SQLite file: while another connection holds an exclusive lock (a backup, a long write), the writer's insert
fails with "database is locked"; it is tried again and lands once the lock is gone, and the writes after it keep
their order. A write that fails for another reason is given up at once and counted."""

from __future__ import annotations

import sqlite3
import threading
import time

from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from agent_console.ops.persister import Persister


def test_a_write_refused_by_a_locked_database_is_tried_again_in_order(tmp_path):
    path = tmp_path / "hub.db"
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.05})  # give up on a lock at once
    with engine.begin() as c:
        c.execute(text("CREATE TABLE t (n INTEGER)"))
    locker = sqlite3.connect(path, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    threading.Timer(0.6, locker.rollback).start()  # released after 0.6 s
    p = Persister(sessionmaker(engine))
    t0 = time.monotonic()
    for n in (1, 2, 3):
        p.submit(lambda db, n=n: db.execute(text("INSERT INTO t VALUES (:n)"), {"n": n}))
    p.submit(lambda db: db.execute(text("INSERT INTO missing_table VALUES (1)")))  # not a passing failure
    p.flush(10)
    took = time.monotonic() - t0
    p.stop()
    with engine.connect() as c:
        rows = [r[0] for r in c.execute(text("SELECT n FROM t ORDER BY rowid"))]
    locker.close()
    engine.dispose()
    assert rows == [1, 2, 3], rows
    assert p.retried >= 1 and p.failed == 1 and 0.5 < took < 4, (p.retried, p.failed, took)
