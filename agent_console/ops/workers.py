"""IVR workers' command sockets: which worker is connected, and sending it ``CommandEnvelope`` messages.

A worker keeps one websocket to ``/internal/worker/ws?worker=<name>`` (bearer worker token), first sends a
``WorkerHello``; the hub then sends commands. :meth:`WorkerRegistry.send_command` may be called from any
thread; it returns False when the worker is not connected (the caller decides what that means).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
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
        return self.send_text(worker, CommandEnvelope(command=command).model_dump_json())

    def send_text(self, worker: str, text: str) -> bool:
        """Queue an enveloped command for ``worker``'s socket on this hub; False when it has none open here."""
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


class ClusterWorkers(WorkerRegistry):
    """The worker sockets of a hub that shares its live state with other hubs (``agent_console.ops.cluster``).

    Holds this hub's own sockets (the base class) and, while this hub decides, where every other worker's socket
    is: a command for a worker on another hub is handed to ``forward(hub, worker, text)``, which delivers it
    through that hub. Another hub's worker counts as away from when that hub said its socket closed (or the hub
    itself went), so its calls end as ``worker_lost`` as on one hub."""

    def __init__(self, hub_id: str, forward: Callable[[str, str, str], None] | None = None) -> None:
        super().__init__()
        self.hub_id = hub_id
        self.forward = forward
        self._remote: dict[str, str] = {}  # worker -> the hub its socket is on

    def remote_hello(self, worker: str, hub: str) -> None:
        with self._lock:
            if hub != self.hub_id:
                self._remote[worker] = hub
            self._lost.pop(worker, None)

    def remote_gone(self, worker: str, hub: str, at: float) -> None:
        """``hub`` says ``worker``'s socket closed at ``at`` (ignored when the worker has moved on since)."""
        with self._lock:
            if hub == self.hub_id or self._remote.get(worker) != hub:
                return
            del self._remote[worker]
            self._lost[worker] = at

    def is_local(self, worker: str) -> bool:
        return WorkerRegistry.is_connected(self, worker)

    def send_local(self, worker: str, text: str) -> bool:
        """Send a command another hub forwarded to a worker whose socket is here."""
        return WorkerRegistry.send_text(self, worker, text)

    def remote_hubs(self) -> set[str]:
        with self._lock:
            return set(self._remote.values())

    def workers_on(self, hub: str) -> list[str]:
        with self._lock:
            return sorted(w for w, h in self._remote.items() if h == hub)

    def expect(self, workers: Iterable[str], at: float) -> None:
        """Workers that should say hello (their calls were rebuilt): away from ``at`` until they do."""
        with self._lock:
            for w in workers:
                if w not in self._conns and w not in self._remote:
                    self._lost.setdefault(w, at)

    def forget_remote(self) -> None:
        with self._lock:
            self._remote.clear()
            self._lost.clear()

    def local(self) -> list[tuple[str, list[str]]]:
        """This hub's own worker sockets: (worker, its calls at its last hello)."""
        with self._lock:
            return [(c.worker, list(c.calls)) for c in self._conns.values()]

    def connected(self) -> list[str]:
        with self._lock:
            return sorted(set(self._conns) | set(self._remote))

    def is_connected(self, worker: str) -> bool:
        with self._lock:
            return worker in self._conns or worker in self._remote

    def send_text(self, worker: str, text: str) -> bool:
        if super().send_text(worker, text):
            return True
        with self._lock:
            hub = self._remote.get(worker)
        if hub is None or self.forward is None:
            return False
        self.forward(hub, worker, text)
        return True
