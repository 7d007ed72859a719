"""Helpers for the operator-console tests against a real hub process: users, worker events, a fake
worker's command socket and an operator's websocket (raw frames kept for inspection)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher
from websockets.sync.client import connect

from agent_console.auth.passwords import use_hasher
from agent_console.auth.users import create_user
from hotline.db import make_engine, session_factory
from ivr.contract import (
    CallAnswered,
    CallOffered,
    CommandEnvelope,
    EventBatch,
    MenuEntered,
    QueueJoined,
    SpeechHeard,
    WorkerHello,
)
from tests.browser import Hub

TOKEN = "worker-token-for-ops-tests"
PASSWORD = "password123"


def ops_hub(home: Path, offer_timeout_s: float = 15.0) -> Hub:
    h = Hub(home)
    h.env.update({"HOTLINE_HUB__WORKER_TOKEN": TOKEN, "HOTLINE_HUB__OFFER_TIMEOUT_S": str(offer_timeout_s)})
    return h.start()


def add_users(hub: Hub, *users: tuple[str, str, str | None]) -> None:
    """(name, role, sip_uri) straight into the hub's database (cheap hashes; the hub verifies any argon2)."""
    previous = use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    engine = make_engine(f"sqlite:///{hub.home / 'hotline.db'}")
    try:
        with session_factory(engine)() as db:
            for name, role, sip in users:
                create_user(db, name, role, PASSWORD, display_name=name, sip_uri=sip)
            db.commit()
    finally:
        engine.dispose()
        use_hasher(previous)


def login_cookie(hub: Hub, name: str) -> str:
    r = httpx.post(f"{hub.url}/api/auth/login", json={"username": name, "password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    return r.cookies["hotline_session"]


def ws_url(hub: Hub, path: str) -> str:
    return hub.url.replace("http://", "ws://") + path


def post_events(hub: Hub, events: list, token: str = TOKEN) -> dict:
    r = httpx.post(f"{hub.url}/internal/events", json=EventBatch(events=events).model_dump(mode="json"),
                   headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def queued_call(call_id: str, worker: str = "w0", caller: str = "13812345678", said: str = "我想问一下怎么立案",
                category: str = "consult", t0: datetime | None = None) -> list:
    """A call that came in, went to menu 2, said something and joined the queue."""
    t0 = t0 or datetime.now(UTC) - timedelta(seconds=20)
    k = {"call_id": call_id, "worker": worker}
    at = lambda s: t0 + timedelta(seconds=s)  # noqa: E731
    return [
        CallOffered(**k, ts=at(0), caller=caller, callee="12368", source="127.0.0.1:5070"),
        CallAnswered(**k, ts=at(0.1)),
        MenuEntered(**k, ts=at(0.2), node="main"),
        MenuEntered(**k, ts=at(3), node="consult"),
        SpeechHeard(**k, ts=at(5), node="consult", kind="partial", text=said[:3]),
        SpeechHeard(**k, ts=at(6), node="consult", kind="final", text=said),
        MenuEntered(**k, ts=at(8), node="consult_staff"),
        QueueJoined(**k, ts=at(9), node="consult_staff", reason="consult_question", category=category),
    ]


class FakeWorker:
    """The worker's end of the command socket: sends a WorkerHello, collects CommandEnvelopes."""

    def __init__(self, hub: Hub, name: str = "w0", token: str = TOKEN, calls: list[str] | None = None):
        self.ws = connect(ws_url(hub, f"/internal/worker/ws?worker={name}"),
                          additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=5, legacy=True)
        self.ws.send(WorkerHello(worker=name, calls=calls or []).model_dump_json())
        self.commands: list[Any] = []

    def next(self, type_: str, timeout: float = 5.0, **match: Any) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            for i, c in enumerate(self.commands):
                if c.type == type_ and all(getattr(c, k) == v for k, v in match.items()):
                    return self.commands.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {type_} {match} command; got {self.commands}")
            try:
                raw = self.ws.recv(timeout=left)
            except TimeoutError:
                continue
            self.commands.append(CommandEnvelope.model_validate_json(raw).command)

    def close(self) -> None:
        self.ws.close()


class Operator:
    """A browser's websocket without the browser: every frame kept raw and parsed."""

    def __init__(self, hub: Hub, cookie: str, resume_from: int = 0, epoch: str | None = None,
                 origin: str | None = None):
        headers = {"Cookie": f"hotline_session={cookie}"}
        if origin:
            headers["Origin"] = origin
        self.ws = connect(ws_url(hub, "/ws/operator"), additional_headers=headers, open_timeout=5, legacy=True)
        self.raw: list[str] = []
        self.events: list[dict] = []
        self.welcome = self._recv(5)
        assert self.welcome["type"] == "welcome"
        self.send({"type": "hello", "resume_from": resume_from, "epoch": epoch or self.welcome["epoch"]})

    def _recv(self, timeout: float) -> dict:
        raw = self.ws.recv(timeout=timeout)
        self.raw.append(raw)
        msg = json.loads(raw)
        self.events.append(msg)
        return msg

    def send(self, msg: dict) -> None:
        self.ws.send(json.dumps(msg))

    def until(self, type_: str, timeout: float = 5.0, **match: Any) -> dict:
        """The next message of ``type_`` (whose fields match), reading on; earlier ones stay in ``events``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {type_} {match}; last: {self.events[-5:]}")
            try:
                msg = self._recv(left)
            except TimeoutError:
                continue
            if msg["type"] == type_ and all(_get(msg, k) == v for k, v in match.items()):
                return msg

    def has_or_until(self, type_: str, timeout: float = 5.0, **match: Any) -> dict:
        """A message of ``type_`` already received (latest first), else the next one that arrives."""
        for msg in reversed(self.events):
            if msg["type"] == type_ and all(_get(msg, k) == v for k, v in match.items()):
                return msg
        return self.until(type_, timeout, **match)

    def drain(self, quiet: float = 0.3) -> list[dict]:
        """Read until nothing arrives for ``quiet`` seconds; returns what arrived."""
        got = []
        while True:
            try:
                got.append(self._recv(quiet))
            except TimeoutError:
                return got

    def seqs(self) -> list[int]:
        return [e["seq"] for e in self.events if e.get("seq")]

    def close(self) -> None:
        self.ws.close()


def _get(msg: dict, dotted: str) -> Any:
    cur: Any = msg
    for part in dotted.split("__"):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur
