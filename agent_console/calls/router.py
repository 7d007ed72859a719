"""``/api/calls``: call records for the console (operators, supervisors, admins)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy.orm import Session

from agent_console.calls.records import MAX_LIMIT, CallDetail, CallOut, call_detail, latest_calls
from agent_console.deps import CONSOLE_ROLES, get_db, require_role

router = APIRouter(prefix="/api/calls", tags=["calls"], dependencies=[Depends(require_role(*CONSOLE_ROLES))])


@router.get("", response_model=list[CallOut], summary="Latest call records, newest first")
def list_calls(limit: int = Query(50, ge=1, le=MAX_LIMIT), db: Session = Depends(get_db)) -> list[CallOut]:
    return [CallOut.model_validate(c) for c in latest_calls(db, limit)]


@router.get("/{call_id}", response_model=CallDetail, summary="One call record with its events")
def get_call(call_id: str, db: Session = Depends(get_db)) -> CallDetail:
    detail = call_detail(db, call_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "未找到该通话记录")
    return detail
