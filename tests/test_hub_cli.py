"""``hotline users``, ``hotline calls`` and ``hotline db`` through typer's CliRunner on a real SQLite file and on
PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from typer.testing import CliRunner

from agent_console.auth.passwords import use_hasher
from agent_console.auth.users import authenticate
from agent_console.calls.ingest import ingest_batch
from agent_console.models import User
from hotline.cli import app
from hotline.db import make_engine, session_factory
from ivr.contract import CallEnded, CallOffered, DigitsReceived, EventBatch, MenuEntered, PromptPlayed

runner = CliRunner()


@pytest.fixture
def cfg(tmp_path, monkeypatch, db_backend, db_url):
    for var in ("HOTLINE_CONFIG", "HOTLINE_HOME", "HOTLINE_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    previous = use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    path = tmp_path / "hotline.toml"
    url = f'database_url = "{db_url}"\n' if db_backend == "postgresql" else ""  # SQLite: the default file in home
    path.write_text(f'home = "{tmp_path / "var"}"\n{url}')
    yield str(path)
    use_hasher(previous)


def run(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def db_session(cfg_path: str):
    from hotline.settings import load_settings

    engine = make_engine(load_settings(Path(cfg_path)).db_url)
    return engine, session_factory(engine)()


def test_help_everywhere():
    for args in (["users"], ["users", "add"], ["users", "list"], ["users", "passwd"], ["users", "disable"],
                 ["calls"], ["calls", "list"], ["db"], ["db", "upgrade"]):
        r = run(*args, "--help")
        assert r.exit_code == 0, (args, r.output)
        assert "Usage" in r.output


def test_users_add_list_passwd_disable(cfg):
    r = run("users", "add", "alice", "--role", "operator", "--password", "secret123", "--config", cfg)
    assert r.exit_code == 0, r.output
    r = run("users", "add", "bob", "--role", "admin", "--display-name", "王管理", "--config", cfg,
            input="pass-word-1\npass-word-1\n")
    assert r.exit_code == 0, r.output

    r = run("users", "add", "alice", "--role", "admin", "--password", "secret123", "--config", cfg)
    assert r.exit_code == 1 and "already exists" in r.output
    r = run("users", "add", "carol", "--role", "judge", "--password", "secret123", "--config", cfg)
    assert r.exit_code == 2 and "judge" in r.output
    r = run("users", "add", "dave", "--role", "operator", "--password", "short", "--config", cfg)
    assert r.exit_code == 2 and "at least 8" in r.output

    r = run("users", "list", "--json", "--config", cfg)
    assert r.exit_code == 0, r.output
    users = [json.loads(line) for line in r.output.splitlines()]
    assert [(u["username"], u["role"], u["active"]) for u in users] == [("alice", "operator", True),
                                                                        ("bob", "admin", True)]
    assert users[1]["display_name"] == "王管理"
    assert "alice" in run("users", "list", "--config", cfg).output

    r = run("users", "passwd", "alice", "--config", cfg, input="new-secret-9\nnew-secret-9\n")
    assert r.exit_code == 0, r.output
    assert run("users", "passwd", "nobody", "--password", "whatever99", "--config", cfg).exit_code == 1
    assert run("users", "disable", "bob", "--config", cfg).exit_code == 0
    assert run("users", "disable", "nobody", "--config", cfg).exit_code == 1

    engine, db = db_session(cfg)
    with db:
        assert authenticate(db, "alice", "new-secret-9") is not None
        assert authenticate(db, "alice", "secret123") is None
        stored = db.scalars(select(User).order_by(User.username)).all()
        assert [u.active for u in stored] == [True, False]
        assert all(u.password_hash.startswith("$argon2id$") for u in stored)
    engine.dispose()


def test_calls_list_json(cfg):
    assert run("db", "upgrade", "--config", cfg).exit_code == 0
    r = run("db", "upgrade", "--config", cfg)
    from hotline.db import head_revision

    assert r.exit_code == 0 and f"revision {head_revision()}" in r.output
    assert run("calls", "list", "--config", cfg).output.strip() == "no calls yet"

    t0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    events = []
    for n, call_id in enumerate(["old", "new"]):
        k = dict(call_id=call_id, worker="w1")
        t = t0 + timedelta(minutes=n)
        events += [CallOffered(**k, ts=t, caller=f"1380000000{n}", callee="12368", source="127.0.0.1:5070"),
                   MenuEntered(**k, ts=t + timedelta(seconds=1), node="main"),
                   PromptPlayed(**k, ts=t + timedelta(seconds=2), node="main", prompt="welcome", played_ms=10,
                                duration_ms=10),
                   DigitsReceived(**k, ts=t + timedelta(seconds=3), node="main", digits="2"),
                   CallEnded(**k, ts=t + timedelta(seconds=9), cause="caller_hangup", side="caller")]
    engine, db = db_session(cfg)
    with db:
        ingest_batch(db, EventBatch(events=events))
        db.commit()
    engine.dispose()

    r = run("calls", "list", "--json", "--limit", "5", "--config", cfg)
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert [x["call_id"] for x in rows] == ["new", "old"]
    assert set(rows[0]) >= {"call_id", "caller", "callee", "worker", "direction", "offered_at", "answered_at",
                            "ended_at", "status", "menu_path", "digits", "prompts", "end_cause", "end_side",
                            "status_code", "media"}
    assert rows[0]["caller"] == "13800000001" and rows[0]["menu_path"] == ["main"]
    assert rows[0]["digits"] == "2"
    assert rows[0]["prompts"] == ["welcome"] and rows[0]["status"] == "ended"
    assert (rows[0]["end_cause"], rows[0]["end_side"]) == ("caller_hangup", "caller")
    assert datetime.fromisoformat(rows[0]["offered_at"]) == t0 + timedelta(minutes=1)

    r = run("calls", "list", "--limit", "1", "--config", cfg)
    assert r.exit_code == 0 and "13800000001" in r.output and "13800000000" not in r.output


def test_bad_config_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("home = [\n")
    r = run("calls", "list", "--config", str(bad))
    assert r.exit_code == 2 and "not valid TOML" in r.output
