"""Request dependencies: the database session, the logged-in user and role checks.

Every route that is not public takes ``Depends(require_role(...))`` (or ``current_user``):
401 ``请先登录`` without a live session, 403 ``权限不足`` for a role not allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session

from agent_console.auth.users import session_user
from agent_console.config import HubConfig
from agent_console.models import ROLES, User

MSG_LOGIN_REQUIRED = "请先登录"
MSG_FORBIDDEN = "权限不足"
MSG_BAD_CREDENTIALS = "用户名或密码错误"
MSG_ACCOUNT_DISABLED = "账号已停用"

#: roles that see the operators' console (call records, queue)
CONSOLE_ROLES = ("operator", "supervisor", "admin")


def get_config(request: Request) -> HubConfig:
    return request.app.state.config


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.sessionmaker() as db:
        yield db


def optional_user(request: Request, db: Session = Depends(get_db)) -> User | None:
    """The logged-in user, or None (for pages that redirect to /login instead of failing)."""
    token = request.cookies.get(request.app.state.config.cookie_name)
    if not token:
        return None
    found = session_user(db, token)
    if found is None:
        return None
    request.state.session_token = token
    return found[1]


def current_user(user: User | None = Depends(optional_user)) -> User:
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, MSG_LOGIN_REQUIRED)
    return user


def require_role(*roles: str) -> Callable[..., User]:
    """A dependency that admits logged-in users of ``roles`` (any role when none are given)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles: {sorted(unknown)}")
    allowed = frozenset(roles or ROLES)

    def dependency(user: User = Depends(current_user)) -> User:
        if user.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, MSG_FORBIDDEN)
        return user

    dependency.__name__ = "require_role_" + "_".join(sorted(allowed))
    return dependency
