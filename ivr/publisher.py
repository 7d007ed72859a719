"""Call events from a worker to the hub, never lost: a local spool first, then HTTP.

Every event is appended to ``<spool>/<worker>.jsonl`` before it is sent; ``<worker>.offset``
records how many bytes the hub has acknowledged. A restarted worker (or the supervisor, after a
crash) resends the rest; the hub ignores event ids it already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from pathlib import Path

import httpx
import structlog
from pydantic import BaseModel

log = structlog.get_logger(__name__)

BATCH = 200
COMPACT_BYTES = 1 << 20


class Spool:
    def __init__(self, directory: Path, worker: str):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{worker}.jsonl"
        self.offset_path = directory / f"{worker}.offset"
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
        tmp = self.offset_path.with_suffix(".tmp")
        tmp.write_text(str(self.offset))
        os.replace(tmp, self.offset_path)

    def close(self) -> None:
        self._f.close()


def _body(lines: list[str]) -> bytes:
    return ('{"v":1,"events":[' + ",".join(lines) + "]}").encode()


class EventPublisher:
    def __init__(self, spool: Spool, hub_url: str | None, token: str | None):
        self.spool = spool
        self.url = f"{hub_url.rstrip('/')}/internal/events" if hub_url else None
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._wake = asyncio.Event()

    def emit(self, event: BaseModel) -> None:
        self.spool.append(event.model_dump_json())
        self._wake.set()

    async def _send(self, client: httpx.AsyncClient) -> bool:
        lines = self.spool.batch()
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
        if r.status_code != 200:
            log.error("hub_refused_events", status=r.status_code, body=r.text[:300])
            return False
        self.spool.ack(len(lines))
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
