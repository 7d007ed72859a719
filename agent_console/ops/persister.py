"""The hub's ordered background writer: database writes of the live console, off the event loop.

A write that fails for a passing reason (an ``OperationalError`` such as the database locked by a backup or a long
write, a connection dropped) is tried again after 0.1, 0.2, 0.4, 0.8 and 1.6 s, in order, before the next one runs:
dropping it would lose an event the hub already acknowledged. One that fails otherwise (a bug, a constraint), or
still fails after that, is logged and counted in ``failed``; filings from events are made again at the next start
(``HubOrders.recheck``)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from agent_console.calls.ingest import ingest_batch
from agent_console.models import Call, CallEventRecord
from ivr.contract import CallEnded, EventBatch

log = logging.getLogger(__name__)
RETRY_DELAYS_S = (0.1, 0.2, 0.4, 0.8, 1.6)


class Persister:
    """One background thread that runs database writes in order (keeps them off the event loop)."""

    def __init__(self, sessionmaker: Callable[[], Session]):
        self._sessions = sessionmaker
        self._jobs: queue.Queue[Callable[[Session], None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.failed = 0  # writes given up on
        self.retried = 0  # attempts made again after a passing failure

    def submit(self, job: Callable[[Session], None]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ops-persist", daemon=True)
                self._thread.start()
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                self._write(job)
            finally:
                self._jobs.task_done()

    def _write(self, job: Callable[[Session], None]) -> None:
        for attempt, delay in enumerate((*RETRY_DELAYS_S, None)):
            try:
                with self._sessions() as db:
                    job(db)
                    db.commit()
                return
            except OperationalError as e:
                error: Exception = e
                if delay is None or not _passing(e):
                    break
                self.retried += 1
                log.warning("ops: a database write failed (%s), trying again in %.1f s (attempt %d)",
                            str(e).splitlines()[0][:200], delay, attempt + 2)
                time.sleep(delay)
            except Exception as e:  # noqa: BLE001 - one failed write must not stop the others
                error = e
                break
        self.failed += 1
        log.error("ops: a database write failed and was given up", exc_info=error)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every submitted write is done (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._jobs.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(5)


_PASSING = ("locked", "busy", "disk i/o", "unable to open", "connection", "server closed", "timeout")


def _passing(e: OperationalError) -> bool:
    """A failure that may be gone in a moment (a lock, a dropped connection), not a missing table or bad SQL."""
    return bool(e.connection_invalidated) or any(w in str(e.orig).lower() for w in _PASSING)


def close_calls(call_ids: list[str], worker: str, at: datetime) -> Callable[[Session], None]:
    """A database job: close the call records of calls a worker no longer has (cause ``worker_lost``)."""

    def job(db: Session) -> None:
        events = [CallEnded(call_id=call_id, worker=worker, ts=at, cause="worker_lost", side="system")
                  for call_id in call_ids]
        ingest_batch(db, EventBatch(events=events))

    return job


def open_call_events(sessions: Callable[[], Session], skip: Collection[str] = frozenset()
                     ) -> dict[str, list[CallEventRecord]]:
    """The stored events of every open call, in order (for rebuilding the live view), leaving out ``skip``."""
    with sessions() as db:
        open_ids = list(db.scalars(select(Call.call_id).where(Call.status.in_(("offered", "answered")))))
        return {call_id: [row for row in db.scalars(
            select(CallEventRecord).where(CallEventRecord.call_id == call_id)
            .order_by(CallEventRecord.ts, CallEventRecord.received_at)) if row.event_id not in skip]
            for call_id in open_ids}
