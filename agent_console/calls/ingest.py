"""Store worker events once and fold them into call records.

A call row is a pure function of the call's stored events (ordered by event time), so events may
arrive late, out of order or twice (a worker resending its spool after a restart) and the record
comes out the same. The first terminal event (``call_rejected``/``call_ended``) by time closes the
call; later ones are kept in ``call_events`` but change nothing. A call with no terminal event is
closed as ``worker_lost``/``system`` by a ``worker_lost`` event of its worker sent at or after the
call's first event; a real ``call_ended`` that arrives later replaces that synthetic end.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_console.models import ID_LEN, Call, CallEventRecord, utcnow
from ivr.contract import EventBatch, WorkerLost

OPEN_STATUSES = ("offered", "answered")
TERMINAL_TYPES = ("call_rejected", "call_ended")
_CHUNK = 500


class BatchError(ValueError):
    """The batch is well-formed JSON but cannot be stored (e.g. an id longer than the column)."""


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    calls: set[str] = field(default_factory=set)
    #: the events stored by this batch, in batch order (duplicates left out)
    stored: list[Any] = field(default_factory=list)


def _check_lengths(batch: EventBatch) -> None:
    for i, e in enumerate(batch.events):
        for name in ("event_id", "call_id", "worker"):
            value = getattr(e, name, "")
            if not value and name != "call_id":
                raise BatchError(f"events[{i}].{name}: must not be empty")
            if len(value or "") > ID_LEN:
                raise BatchError(f"events[{i}].{name}: longer than {ID_LEN} characters")
        if getattr(e, "call_id", None) == "":
            raise BatchError(f"events[{i}].call_id: must not be empty")


def _existing_ids(db: Session, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i:i + _CHUNK]
        found.update(db.scalars(select(CallEventRecord.event_id).where(CallEventRecord.event_id.in_(chunk))))
    return found


def ingest_batch(db: Session, batch: EventBatch, now: datetime | None = None) -> IngestResult:
    """Store new events and update the calls they touch. The caller commits (one transaction)."""
    _check_lengths(batch)
    now = now or utcnow()
    result = IngestResult()
    seen = _existing_ids(db, list({e.event_id for e in batch.events}))
    lost_workers: set[str] = set()
    changed: set[str] = set()  # calls whose row the batch changes
    for i, e in enumerate(batch.events):
        if e.event_id in seen:
            result.duplicates += 1
            continue
        seen.add(e.event_id)
        call_id = None if isinstance(e, WorkerLost) else e.call_id
        # received_at breaks ties between events with the same ts in batch order
        db.add(CallEventRecord(event_id=e.event_id, call_id=call_id, worker=e.worker, type=e.type, ts=e.ts,
                               received_at=now + timedelta(microseconds=i),
                               payload=e.model_dump(mode="json")))
        result.accepted += 1
        result.stored.append(e)
        result.by_type[e.type] += 1
        if call_id is None:
            lost_workers.add(e.worker)
        else:
            result.calls.add(call_id)
            if not _row_neutral(e):
                changed.add(call_id)
    db.flush()
    for worker in sorted(lost_workers):
        lost_calls = set(db.scalars(select(Call.call_id).where(Call.worker == worker, Call.status.in_(OPEN_STATUSES))))
        result.calls |= lost_calls
        changed |= lost_calls
    for call_id in sorted(result.calls):
        # the row is rebuilt from all the call's events: a batch of partial transcripts only (several a second
        # while a caller speaks) changes nothing in it, and rebuilding for them made ingestion grow with the
        # call's length (bench/multi_host.py)
        if call_id in changed or db.get(Call, call_id) is None:
            rebuild_call(db, call_id)
    return result


def _row_neutral(e: Any) -> bool:
    """Does the call row ignore this event (see rebuild_call)?"""
    return e.type == "speech_heard" and getattr(e, "kind", "") != "final"


def rebuild_call(db: Session, call_id: str) -> Call:
    """Recompute the call row of ``call_id`` from its stored events."""
    order = (CallEventRecord.ts, CallEventRecord.received_at, CallEventRecord.event_id)
    rows = db.scalars(select(CallEventRecord).where(CallEventRecord.call_id == call_id)
                      .order_by(*order)).all()
    call = db.get(Call, call_id)
    if call is None:
        call = Call(call_id=call_id)
        db.add(call)
    offered: CallEventRecord | None = None
    answered_at: datetime | None = None
    terminal: CallEventRecord | None = None
    menu_path: list[str] = []
    digits: list[str] = []
    prompts: list[str] = []
    transcript: list[dict[str, Any]] = []
    handoff: str | None = None
    for r in rows:
        p: dict[str, Any] = r.payload
        if r.type == "call_offered":
            offered = offered or r
        elif r.type == "call_answered":
            answered_at = answered_at or r.ts
        elif r.type == "menu_entered":
            menu_path.append(str(p.get("node", "")))
        elif r.type == "digits_received":
            digits.append(str(p.get("digits", "")))
        elif r.type == "prompt_played":
            prompts.append(str(p.get("prompt", "")))
        elif r.type == "speech_heard" and p.get("kind") == "final":
            transcript.append({"node": p.get("node", ""), "speaker": p.get("speaker", "caller"),
                               "text": p.get("text", ""),
                               "confidence": p.get("confidence"), "at": r.ts.isoformat()})
        elif r.type == "handoff_requested":
            handoff = str(p.get("reason", ""))
        elif r.type in TERMINAL_TYPES:
            terminal = terminal or r

    if offered is not None:
        p = offered.payload
        call.caller, call.callee = p.get("caller", ""), p.get("callee", "")
        call.source, call.sip_call_id = p.get("source", ""), p.get("sip_call_id", "")
        call.direction = p.get("direction", "inbound")
        call.worker = offered.worker
        call.offered_at = offered.ts
    else:  # the offer has not arrived (yet): keep what we know
        call.caller, call.callee = call.caller or "", call.callee or ""
        call.source, call.sip_call_id = call.source or "", call.sip_call_id or ""
        call.direction = call.direction or "inbound"
        call.worker = rows[0].worker if rows else (call.worker or "")
        call.offered_at = None
    call.started_at = call.offered_at or (rows[0].ts if rows else None)
    call.answered_at = answered_at
    call.menu_path, call.digits, call.prompts = menu_path, "".join(digits), prompts
    call.transcript, call.handoff_reason = transcript, handoff

    if terminal is None and rows:
        terminal = db.scalars(
            select(CallEventRecord).where(CallEventRecord.type == "worker_lost",
                                          CallEventRecord.worker == call.worker,
                                          CallEventRecord.ts >= rows[0].ts)
            .order_by(CallEventRecord.ts).limit(1)
        ).first()

    if terminal is None:
        call.status = "answered" if answered_at else "offered"
        call.ended_at = call.end_cause = call.end_side = call.status_code = call.media = None
    else:
        p = terminal.payload
        call.ended_at = terminal.ts
        if terminal.type == "call_rejected":
            call.status, call.end_cause, call.end_side = "rejected", p.get("reason") or "rejected", "ivr"
            call.status_code, call.media = p.get("status_code"), None
        elif terminal.type == "call_ended":
            call.status, call.end_cause, call.end_side = "ended", p.get("cause"), p.get("side")
            call.status_code, call.media = p.get("status_code"), p.get("media")
        else:  # worker_lost
            call.status, call.end_cause, call.end_side = "ended", "worker_lost", "system"
            call.status_code, call.media = None, None
    call.updated_at = utcnow()
    return call
