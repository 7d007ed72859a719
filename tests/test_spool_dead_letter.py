"""Issue 15, item 5: the worker's spool is fsynced, and one event the hub refuses does not block the rest.

A real hub process (`hotline hub`) and the worker's real publisher (ivr/publisher.py) in this process: a worker
emits 6 events of one call, then one the hub refuses (a call id longer than the hub stores: 422), then 6 more.
The 12 good ones arrive; the bad one is in ``<spool>/w9.dead.jsonl`` with the hub's status and reason, counted by
``dead_letter_count`` (what `hotline doctor` reports), and a restarted spool has nothing pending."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from hotline.doctor_spool import spool_check
from ivr import publisher as pub
from ivr.contract import CallAnswered, CallOffered, DigitsReceived, MenuEntered
from ivr.publisher import EventPublisher, Spool, dead_letter_count
from tests.ops_support import TOKEN, ops_hub


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = ops_hub(tmp_path_factory.mktemp("dead-letter-hub"))
    yield h
    h.stop()


def _events(call_id: str, n: int) -> list:
    k = {"call_id": call_id, "worker": "w9"}
    out = [CallOffered(**k, caller="13800000002", callee="12368", source="127.0.0.1:5070"), CallAnswered(**k)]
    out += [DigitsReceived(**k, node="main", digits=str(i % 10)) for i in range(n - 3)]
    return out + [MenuEntered(**k, node="main")]


def stored(hub, call_ids: list[str]) -> dict[str, int]:
    with sqlite3.connect(hub.home / "hotline.db") as db:
        return {c: db.execute("SELECT count(*) FROM call_events WHERE call_id = ?", (c,)).fetchone()[0]
                for c in call_ids}


def test_a_refused_event_is_dead_lettered_and_the_rest_arrive(hub, tmp_path):
    spool_dir = tmp_path / "spool"
    spool = Spool(spool_dir, "w9")
    publisher = EventPublisher(spool, hub.url, TOKEN)
    before, after = _events("dl-before", 6), _events("dl-after", 6)
    bad = MenuEntered(call_id="x" * 300, worker="w9", node="main")  # the hub's ids are at most 64 characters
    for e in [*before, bad, *after]:
        publisher.emit(e)

    async def deliver() -> bool:
        return await publisher.drain(20.0)

    assert asyncio.run(deliver()), f"still pending: {len(spool.pending)}"
    spool.close()
    assert stored(hub, ["dl-before", "dl-after"]) == {"dl-before": 6, "dl-after": 6}
    (line,) = (spool_dir / "w9.dead.jsonl").read_text(encoding="utf-8").splitlines()
    dead = json.loads(line)
    assert dead["status"] == 422 and "call_id" in dead["reason"] and dead["event"]["event_id"] == bad.event_id
    assert dead_letter_count(spool_dir) == {"w9": 1}
    name, status, detail, _fix = spool_check(spool_dir)  # what `hotline doctor` shows
    assert (name, status) == ("spool", "warn") and "1 event(s)" in detail and "w9: 1" in detail
    again = Spool(spool_dir, "w9")  # a restarted worker: nothing left to send, nothing sent twice
    assert not again.pending
    again.close()


def test_events_are_fsynced_before_emit_returns(tmp_path, monkeypatch):
    synced: list[int] = []
    real = pub.os.fsync
    monkeypatch.setattr(pub.os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    spool = Spool(tmp_path, "w8")
    spool.append(CallAnswered(call_id="c", worker="w8").model_dump_json())
    assert synced, "the spool line was not fsynced"
    n = len(synced)
    spool.ack(1)
    assert len(synced) > n, "the acknowledged offset was not fsynced"
    spool.close()
