"""User and session operations shared by the web API and the ``hotline users`` command."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from agent_console.auth.passwords import MIN_PASSWORD_LENGTH, hash_password, needs_rehash, verify_password
from agent_console.models import ROLES, LoginSession, User, utcnow
from work_orders.models import WORK_ORDER_CATEGORIES

SESSION_RETENTION_DAYS = 30  # expired sessions are deleted this long after expiry
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class UserError(ValueError):
    """A user operation was refused; the message says why (English, for the CLI and logs)."""


class UserExists(UserError):
    pass


class UnknownUser(UserError):
    pass


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")


def get_user(db: Session, username: str) -> User | None:
    return db.scalars(select(User).where(User.username == username)).first()


def require_user(db: Session, username: str) -> User:
    user = get_user(db, username)
    if user is None:
        raise UnknownUser(f"no user named {username!r}")
    return user


def create_user(db: Session, username: str, role: str, password: str, *, display_name: str = "",
                sip_uri: str | None = None, skills: list[str] | None = None) -> User:
    """Add a user (the caller commits). Raises UserError for a bad name, role, skill or password."""
    if not USERNAME_RE.match(username):
        raise UserError(f"bad user name {username!r}: use 1-64 letters, digits and _ . @ -")
    bad_skills = sorted(set(skills or ()) - set(WORK_ORDER_CATEGORIES))
    if bad_skills:
        raise UserError(f"bad skills {bad_skills}: choose from {', '.join(WORK_ORDER_CATEGORIES)}")
    if role not in ROLES:
        raise UserError(f"bad role {role!r}: choose one of {', '.join(ROLES)}")
    check_password(password)
    if get_user(db, username) is not None:
        raise UserExists(f"user {username!r} already exists")
    user = User(username=username, role=role, password_hash=hash_password(password),
                display_name=display_name or username, sip_uri=sip_uri, skills=list(skills or []), active=True)
    db.add(user)
    db.flush()
    return user


def set_password(db: Session, username: str, password: str) -> User:
    """Change a password and end the user's sessions (the caller commits)."""
    check_password(password)
    user = require_user(db, username)
    user.password_hash = hash_password(password)
    revoke_user_sessions(db, user.id)
    return user


def set_active(db: Session, username: str, active: bool) -> User:
    user = require_user(db, username)
    user.active = active
    if not active:
        revoke_user_sessions(db, user.id)
    return user


def list_users(db: Session) -> list[User]:
    return list(db.scalars(select(User).order_by(User.username)))


def authenticate(db: Session, username: str, password: str) -> User | None:
    """The user when name and password match (active or not), else None; rehashes old hashes."""
    user = get_user(db, username)
    if not verify_password(user.password_hash if user else None, password):
        return None
    assert user is not None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(db: Session, user: User, hours: float) -> tuple[str, LoginSession]:
    """A new login session; returns the cookie token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    stale = now - timedelta(days=SESSION_RETENTION_DAYS)
    db.execute(delete(LoginSession).where(LoginSession.expires_at < stale))
    s = LoginSession(token_hash=token_hash(token), user_id=user.id, created_at=now,
                     expires_at=now + timedelta(hours=hours), revoked=False)
    db.add(s)
    db.flush()
    return token, s


def session_user(db: Session, token: str, now: datetime | None = None) -> tuple[LoginSession, User] | None:
    """The live session and active user for a cookie token, else None."""
    row = db.execute(
        select(LoginSession, User).join(User, User.id == LoginSession.user_id)
        .where(LoginSession.token_hash == token_hash(token))
    ).first()
    if row is None:
        return None
    s, user = row
    if s.revoked or s.expires_at <= (now or utcnow()) or not user.active:
        return None
    return s, user


def revoke_session(db: Session, token: str) -> bool:
    res = db.execute(update(LoginSession).where(LoginSession.token_hash == token_hash(token),
                                                LoginSession.revoked.is_(False)).values(revoked=True))
    return bool(res.rowcount)


def revoke_user_sessions(db: Session, user_id: int) -> None:
    db.execute(update(LoginSession).where(LoginSession.user_id == user_id, LoginSession.revoked.is_(False))
               .values(revoked=True))
