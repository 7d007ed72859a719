"""``/api/calls``: call records for the console (operators, supervisors, admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy.orm import Session

from agent_console.calls.records import MAX_LIMIT, CallDetail, CallOut, call_detail, latest_calls
from agent_console.deps import CONSOLE_ROLES, get_db, require_role
from agent_console.models import User
from agent_console.pii import mask_for

router = APIRouter(prefix="/api/calls", tags=["calls"])
console_user = require_role(*CONSOLE_ROLES)


@router.get("", response_model=list[CallOut], summary="Latest call records, newest first (personal data masked "
                                                        "unless admin)")
def list_calls(limit: int = Query(50, ge=1, le=MAX_LIMIT), db: Session = Depends(get_db),
               user: User = Depends(console_user)) -> list[dict[str, Any]]:
    return [mask_for(user.role, CallOut.model_validate(c).model_dump(mode="json")) for c in latest_calls(db, limit)]


@router.get("/{call_id}", response_model=CallDetail, summary="One call record with its events")
def get_call(call_id: str, db: Session = Depends(get_db), user: User = Depends(console_user)) -> dict[str, Any]:
    detail = call_detail(db, call_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "未找到该通话记录")
    return mask_for(user.role, detail.model_dump(mode="json"))
