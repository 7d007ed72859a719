"""The hub's ordered background writer: database writes of the live console, off the event loop."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from agent_console.calls.ingest import ingest_batch
from ivr.contract import CallEnded, EventBatch

log = logging.getLogger(__name__)


class Persister:
    """One background thread that runs database writes in order (keeps them off the event loop)."""

    def __init__(self, sessionmaker: Callable[[], Session]):
        self._sessions = sessionmaker
        self._jobs: queue.Queue[Callable[[Session], None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

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
                with self._sessions() as db:
                    job(db)
                    db.commit()
            except Exception:  # noqa: BLE001 - one failed write must not stop the others
                log.exception("ops: a database write failed")
            finally:
                self._jobs.task_done()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every submitted write is done (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._jobs.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(5)


def close_calls(call_ids: list[str], worker: str, at: datetime) -> Callable[[Session], None]:
    """A database job: close the call records of calls a worker no longer has (cause ``worker_lost``)."""

    def job(db: Session) -> None:
        events = [CallEnded(call_id=call_id, worker=worker, ts=at, cause="worker_lost", side="system")
                  for call_id in call_ids]
        ingest_batch(db, EventBatch(events=events))

    return job
