"""``/internal``: the worker-facing API, authenticated by the shared worker token (not a login)."""

from __future__ import annotations

import hmac
import logging
import random
import time

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import IntegrityError

from agent_console.calls.ingest import BatchError, IngestResult, ingest_batch
from ivr.contract import BatchAck, EventBatch

log = logging.getLogger(__name__)
_ATTEMPTS = 8
_bearer = HTTPBearer(auto_error=False, description="the worker token")


def require_worker(request: Request,
                   creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    expected: str = request.app.state.config.worker_token
    # an empty configured token lets nobody in (it would match an empty bearer token)
    if creds is None or not expected or not hmac.compare_digest(creds.credentials.encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or missing worker token",
                            headers={"WWW-Authenticate": "Bearer"})


router = APIRouter(prefix="/internal", tags=["internal"], dependencies=[Depends(require_worker)])


def _store(request: Request, batch: EventBatch) -> IngestResult:
    for attempt in range(_ATTEMPTS):
        # one writer per hub process; across hubs (PostgreSQL) the IntegrityError retry below applies
        with request.app.state.ingest_lock, request.app.state.sessionmaker() as db:
            try:
                result = ingest_batch(db, batch)
                db.commit()
            except IntegrityError:  # a concurrent batch stored one of these ids first: look again
                db.rollback()
                if attempt == _ATTEMPTS - 1:
                    raise
            else:
                # the live console follows the newly stored events, in the order they were stored
                if result.stored:
                    try:
                        request.app.state.ops.on_events_stored(result.stored)
                    except Exception:  # noqa: BLE001 - the events are stored; the live view is best effort
                        log.exception("live console update failed")
                return result
        time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
    raise AssertionError("unreachable")


@router.post("/events", response_model=BatchAck, summary="Store a batch of call events from a worker")
def post_events(batch: EventBatch, request: Request) -> BatchAck:
    try:
        result = _store(request, batch)
    except BatchError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e)) from None
    metrics = request.app.state.metrics
    for type_, n in result.by_type.items():
        metrics.events_ingested.labels(type=type_).inc(n)
    metrics.events_duplicate.inc(result.duplicates)
    if result.accepted:
        log.debug("stored %d events (%d duplicates) for %d calls", result.accepted, result.duplicates,
                  len(result.calls))
    return BatchAck(accepted=result.accepted, duplicates=result.duplicates)
