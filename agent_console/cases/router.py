"""Case self-service for IVR workers (``/internal/cases``, worker token) and the case view for staff (``/api/cases``).

``POST /internal/cases/lookup`` ``{"number", "caller"?, "ticket"?}`` → :class:`.desk.LookupReply`
``POST /internal/cases/verify`` ``{"number", "secret", "caller", "call_id"?}`` → :class:`.desk.VerifyReply`
``GET /api/cases/{number}`` (operators, supervisors, admins, handlers; party names masked unless the role
sees personal data in clear) → the case, its status sentence and today's verification attempts.

The endpoints are plain ``def``: the case system (scrypt, HTTP) runs on the server's thread pool.
"""

from __future__ import annotations

import threading

from fastapi import APIRouter, Depends, HTTPException, Request, status

from agent_console.calls.internal import require_worker
from agent_console.cases.desk import CaseDesk, LookupReply, LookupRequest, VerifyReply, VerifyRequest
from agent_console.deps import require_role
from agent_console.models import User
from agent_console.pii import sees_clear
from court_cases.system import CaseSystemUnavailable

internal_router = APIRouter(prefix="/internal/cases", tags=["internal"], dependencies=[Depends(require_worker)])
router = APIRouter(prefix="/api/cases", tags=["cases"])
_build_lock = threading.Lock()


def get_desk(request: Request) -> CaseDesk:
    """The app's case desk, built on first use from ``HubConfig.cases``."""
    app = request.app
    desk = getattr(app.state, "cases_desk", None)
    if desk is None:
        with _build_lock:
            desk = getattr(app.state, "cases_desk", None)
            if desk is None:
                config = app.state.config
                desk = CaseDesk.build(config.cases, app.state.sessionmaker, secret_key=config.secret_key,
                                      tz=config.timezone)
                app.state.cases_desk = desk
    return desk


@internal_router.post("/lookup", response_model=LookupReply, summary="Find a case by keypad/spoken number")
def lookup(req: LookupRequest, desk: CaseDesk = Depends(get_desk)) -> LookupReply:
    return desk.lookup(req)


@internal_router.post("/verify", response_model=VerifyReply,
                      summary="Check the caller's 查询密码 / ID digits; counted and locked per caller and case")
def verify(req: VerifyRequest, desk: CaseDesk = Depends(get_desk)) -> VerifyReply:
    return desk.verify(req)


@router.get("/{number}", summary="A case for the console (party names masked for roles without clear view)")
def staff_case(number: str, user: User = Depends(require_role("operator", "supervisor", "admin", "handler")),
               desk: CaseDesk = Depends(get_desk)) -> dict:
    try:
        doc = desk.staff_view(number, clear=sees_clear(user.role))
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "案号格式不正确") from None
    except CaseSystemUnavailable:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "案件系统暂时无法查询，请稍后再试") from None
    if doc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "未找到该案件")
    return doc
