"""IVR workers' command sockets: which worker is connected, and sending it ``CommandEnvelope`` messages.

A worker keeps one websocket to ``/internal/worker/ws?worker=<name>`` (bearer worker token), first sends a
``WorkerHello``; the hub then sends commands. :meth:`WorkerRegistry.send_command` may be called from any
thread; it returns False when the worker is not connected (the caller decides what that means).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from ivr.contract import CommandEnvelope, HubCommand


@dataclass
class WorkerConn:
    worker: str
    loop: asyncio.AbstractEventLoop
    outbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    calls: list[str] = field(default_factory=list)
    sent: int = 0


class WorkerRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conns: dict[str, WorkerConn] = {}
        self._lost: dict[str, float] = {}  # worker -> when its last socket closed (no newer one open)

    def register(self, conn: WorkerConn) -> WorkerConn | None:
        """Make ``conn`` the worker's socket; returns the one it replaces (to be closed)."""
        with self._lock:
            old = self._conns.get(conn.worker)
            self._conns[conn.worker] = conn
            self._lost.pop(conn.worker, None)
            return old

    def unregister(self, conn: WorkerConn, at: float | None = None) -> None:
        """``conn`` closed at ``at`` (hub clock); unless a newer socket of that worker is open, the worker counts
        as away from then (:meth:`lost_before`)."""
        with self._lock:
            if self._conns.get(conn.worker) is conn:
                del self._conns[conn.worker]
                if at is not None:
                    self._lost[conn.worker] = at

    def lost_before(self, cutoff: float) -> dict[str, float]:
        """Workers away since before ``cutoff`` (by when they went), each given once."""
        with self._lock:
            gone = {w: at for w, at in self._lost.items() if at < cutoff}
            for w in gone:
                del self._lost[w]
            return gone

    def connected(self) -> list[str]:
        with self._lock:
            return sorted(self._conns)

    def is_connected(self, worker: str) -> bool:
        with self._lock:
            return worker in self._conns

    def send_command(self, worker: str, command: HubCommand) -> bool:
        """Queue ``command`` for ``worker``'s socket; False when that worker has no socket open."""
        text = CommandEnvelope(command=command).model_dump_json()
        with self._lock:
            conn = self._conns.get(worker)
            if conn is None:
                return False
            conn.sent += 1
        try:
            conn.loop.call_soon_threadsafe(conn.outbox.put_nowait, text)
        except RuntimeError:  # its loop is closed: the socket is gone
            self.unregister(conn)
            return False
        return True
