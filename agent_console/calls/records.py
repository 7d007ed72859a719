"""Reading call records: the shape shared by ``/api/calls`` and ``hotline calls list``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agent_console.models import Call, CallEventRecord

MAX_LIMIT = 1000


class CallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    call_id: str
    caller: str
    callee: str
    worker: str
    direction: str
    offered_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    status: str
    menu_path: list[str]
    digits: str
    prompts: list[str]
    transcript: list[dict[str, Any]] | None = None
    handoff_reason: str | None = None
    end_cause: str | None
    end_side: str | None
    status_code: int | None
    media: dict[str, Any] | None
    #: the SIP Call-ID the caller's phone chose (a softphone or test finds its own call by it)
    sip_call_id: str = ""


class CallEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    event_id: str
    type: str
    worker: str
    ts: datetime
    payload: dict[str, Any]


class CallDetail(CallOut):
    source: str
    updated_at: datetime
    events: list[CallEventOut]


def latest_calls(db: Session, limit: int = 50) -> list[Call]:
    """The newest calls first (by offer time, or first event when the offer has not arrived)."""
    limit = max(1, min(limit, MAX_LIMIT))
    return list(db.scalars(select(Call).order_by(Call.started_at.desc(), Call.call_id.desc()).limit(limit)))


def count_open_calls(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(Call).where(Call.status.in_(("offered", "answered"))))


def call_detail(db: Session, call_id: str) -> CallDetail | None:
    call = db.get(Call, call_id)
    if call is None:
        return None
    events = db.scalars(select(CallEventRecord).where(CallEventRecord.call_id == call_id)
                        .order_by(CallEventRecord.ts, CallEventRecord.received_at)).all()
    data = CallOut.model_validate(call).model_dump()
    return CallDetail(**data, source=call.source, updated_at=call.updated_at,
                      events=[CallEventOut.model_validate(e) for e in events])
