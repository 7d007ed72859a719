"""``/api/auth``: log in (JSON or form), log out, who am I."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from agent_console.auth.throttle import MSG_TOO_MANY, LoginThrottle
from agent_console.auth.users import authenticate, revoke_session, start_session
from agent_console.config import HubConfig
from agent_console.deps import (
    MSG_ACCOUNT_DISABLED,
    MSG_BAD_CREDENTIALS,
    current_user,
    get_db,
)
from agent_console.guards.shared_windows import SharedLoginThrottle, shared_windows
from agent_console.models import User

router = APIRouter(prefix="/api/auth", tags=["auth"])


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: str
    display_name: str
    sip_uri: str | None


class LoginIn(BaseModel):
    username: str
    password: str


class LoginOut(BaseModel):
    user: UserOut
    expires_at: datetime


def _login(sessionmaker: Any, config: HubConfig, username: str, password: str) -> tuple[str, LoginOut]:
    with sessionmaker() as db:
        user = authenticate(db, username, password)
        if user is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, MSG_BAD_CREDENTIALS)
        if not user.active:
            raise HTTPException(status.HTTP_403_FORBIDDEN, MSG_ACCOUNT_DISABLED)
        token, s = start_session(db, user, config.session_hours)
        out = LoginOut(user=UserOut.model_validate(user), expires_at=s.expires_at)
        db.commit()
        return token, out


def _throttle(request: Request) -> LoginThrottle | SharedLoginThrottle:
    state = request.app.state
    if not hasattr(state, "login_throttle"):  # one per app, made on the first login; shared by the hubs with Redis
        windows = shared_windows(state)
        state.login_throttle = SharedLoginThrottle(windows) if windows else LoginThrottle()
    return state.login_throttle


def set_session_cookie(response: Response, config: HubConfig, token: str) -> None:
    response.set_cookie(config.cookie_name, token, max_age=int(config.session_hours * 3600), path="/",
                        httponly=True, samesite="lax", secure=config.cookie_secure)


@router.post(
    "/login",
    response_model=LoginOut,
    summary="Log in with username and password (JSON or form); sets the session cookie",
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": LoginIn.model_json_schema()},
        "application/x-www-form-urlencoded": {"schema": LoginIn.model_json_schema()},
    }}},
    responses={401: {"description": "用户名或密码错误"}, 403: {"description": "账号已停用"}},
)
async def login(request: Request) -> Response:
    config: HubConfig = request.app.state.config
    ctype = request.headers.get("content-type", "")
    is_form = not ctype.startswith("application/json")
    try:
        if is_form:
            form = await request.form()
            data: Any = {k: form.get(k) for k in ("username", "password")}
        else:
            data = await request.json()
        creds = LoginIn.model_validate(data)
    except (ValueError, json.JSONDecodeError):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "请输入用户名和密码") from None
    wants_page = is_form and "text/html" in request.headers.get("accept", "")
    throttle = _throttle(request)
    username, address = creds.username.strip(), request.client.host if request.client else "-"
    wait = throttle.retry_after(username, address)
    if wait > 0:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, MSG_TOO_MANY.format(minutes=max(1, round(wait / 60))),
                            headers={"Retry-After": str(int(wait) + 1)})
    try:
        token, out = await run_in_threadpool(_login, request.app.state.sessionmaker, config, username,
                                             creds.password)
    except HTTPException as e:
        if e.status_code == status.HTTP_401_UNAUTHORIZED:
            throttle.failed(username, address)
        if wants_page:  # a browser without JavaScript posted the form
            return RedirectResponse("/login?error=1", status.HTTP_303_SEE_OTHER)
        raise
    throttle.succeeded(username)
    response: Response = (RedirectResponse("/", status.HTTP_303_SEE_OTHER) if wants_page
                          else JSONResponse(out.model_dump(mode="json")))
    set_session_cookie(response, config, token)
    return response


@router.post("/logout", summary="End the current session", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, response: Response, user: User = Depends(current_user),
           db: Session = Depends(get_db)) -> Response:
    token = getattr(request.state, "session_token", None)
    if token:
        revoke_session(db, token)
        db.commit()
    config: HubConfig = request.app.state.config
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(config.cookie_name, path="/", httponly=True, samesite="lax",
                           secure=config.cookie_secure)
    return response


@router.get("/me", response_model=UserOut, summary="The logged-in user")
def me(user: User = Depends(current_user)) -> User:
    return user
