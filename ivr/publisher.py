"""Call events from a worker to the hub, never lost: a local spool first, then HTTP.

Every event is appended to ``<spool>/<worker>.jsonl`` and fsynced before ``emit`` returns (a power cut
after an event was reported loses nothing); ``<worker>.offset`` records how many bytes the hub has
acknowledged. A restarted worker (or the supervisor, after a crash) resends the rest; the hub ignores
event ids it already has.

An event the hub refuses for what it is (a 4xx other than 401/403/408/429: the same event would be
refused forever) must not block the events behind it: a refused batch is sent again one event at a time,
and each event refused on its own goes to ``<spool>/<worker>.dead.jsonl`` (with the status and the hub's
reason), is counted, and the spool goes on. ``hotline doctor`` reports the dead-letter files
(:func:`dead_letter_count`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import deque
from pathlib import Path

import httpx
import structlog
from pydantic import BaseModel

from ivr.contract import dead_letter_count

__all__ = ["EventPublisher", "Spool", "dead_letter_count", "deliver_spool"]

log = structlog.get_logger(__name__)

BATCH = 200
COMPACT_BYTES = 1 << 20
#: hub answers that say "try again later" or "not you" rather than "this event is wrong"
TRANSIENT_4XX = frozenset({401, 403, 408, 409, 425, 429})


def _fsync_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Spool:
    def __init__(self, directory: Path, worker: str):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{worker}.jsonl"
        self.offset_path = directory / f"{worker}.offset"
        self.dead_path = directory / f"{worker}.dead.jsonl"
        self.dead = 0  # events sent to the dead-letter file by this process
        self.offset = int(self.offset_path.read_text() or 0) if self.offset_path.exists() else 0
        self.pending: deque[tuple[str, int]] = deque()
        if self.path.exists():
            with self.path.open("rb") as f:
                f.seek(self.offset)
                for raw in f:
                    if raw.endswith(b"\n"):  # a torn last line (killed mid-write) is not an event
                        self.pending.append((raw[:-1].decode(), len(raw)))
        self._f = self.path.open("ab")

    def append(self, line: str) -> None:
        raw = line.encode() + b"\n"
        self._f.write(raw)
        self._f.flush()
        os.fsync(self._f.fileno())
        self.pending.append((line, len(raw)))

    def batch(self) -> list[str]:
        return [line for line, _ in list(self.pending)[:BATCH]]

    def ack(self, count: int) -> None:
        for _ in range(count):
            _, n = self.pending.popleft()
            self.offset += n
        if not self.pending and self.offset >= COMPACT_BYTES:
            self._f.truncate(0)
            self.offset = 0
        _fsync_write(self.offset_path, str(self.offset))

    def bury(self, status: int, reason: str) -> None:
        """The first pending event goes to the dead-letter file (fsynced), then counts as delivered."""
        line, _ = self.pending[0]
        record = json.dumps({"status": status, "reason": reason[:500], "event": json.loads(line)},
                            ensure_ascii=False)
        with self.dead_path.open("a", encoding="utf-8") as f:
            f.write(record + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.dead += 1
        self.ack(1)

    def close(self) -> None:
        self._f.close()


def _body(lines: list[str]) -> bytes:
    return ('{"v":1,"events":[' + ",".join(lines) + "]}").encode()


class EventPublisher:
    def __init__(self, spool: Spool, hub_url: str | None, token: str | None):
        self.spool = spool
        self._one_by_one = 0  # events still to send singly after a refused batch
        self.url = f"{hub_url.rstrip('/')}/internal/events" if hub_url else None
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._wake = asyncio.Event()

    def emit(self, event: BaseModel) -> None:
        self.spool.append(event.model_dump_json())
        self._wake.set()

    async def _send(self, client: httpx.AsyncClient) -> bool:
        lines = self.spool.batch()
        if self._one_by_one:
            lines = lines[:1]
        if not lines:
            return True
        if self.url is None:  # no hub configured (bare worker): the spool file is the record
            self.spool.ack(len(lines))
            return True
        try:
            r = await client.post(self.url, content=_body(lines), headers=self.headers)
        except httpx.HTTPError as e:
            log.warning("hub_unreachable", error=str(e), pending=len(self.spool.pending))
            return False
        if r.status_code == 200:
            self.spool.ack(len(lines))
            self._one_by_one = max(0, self._one_by_one - len(lines))
            return True
        log.error("hub_refused_events", status=r.status_code, body=r.text[:300], events=len(lines))
        if not 400 <= r.status_code < 500 or r.status_code in TRANSIENT_4XX:
            return False  # the hub is unwell or we are not let in: the same events again later
        if len(lines) > 1:  # which one? each of this batch on its own
            self._one_by_one = len(lines)
            return True
        self.spool.bury(r.status_code, r.text)
        self._one_by_one = max(0, self._one_by_one - 1)
        log.error("event_dead_lettered", status=r.status_code, file=self.spool.dead_path.name,
                  dead=self.spool.dead)
        return True

    async def run(self) -> None:
        backoff = 0.2
        async with httpx.AsyncClient(timeout=5.0) as client:
            while True:
                if not self.spool.pending:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), 1.0)
                    continue
                if await self._send(client):
                    backoff = 0.2
                else:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)

    async def drain(self, timeout: float) -> bool:
        """Try to deliver everything pending within ``timeout`` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while self.spool.pending and asyncio.get_running_loop().time() < deadline:
                if not await self._send(client):
                    await asyncio.sleep(0.2)
        return not self.spool.pending


def deliver_spool(directory: Path, worker: str, hub_url: str, token: str, timeout: float = 5.0) -> bool:
    """For the supervisor: send what a dead worker left in its spool."""
    spool = Spool(directory, worker)
    try:
        return asyncio.run(EventPublisher(spool, hub_url, token).drain(timeout))
    finally:
        spool.close()
