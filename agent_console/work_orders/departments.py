"""Departments and judges' teams (where orders are dispatched) and their handlers (``users.department``),
shared by the API (``/api/departments``) and ``hotline departments``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from agent_console.models import User, utcnow
from work_orders.models import DEPARTMENT_KINDS, Department
from work_orders.store import begin_write


class DepartmentError(ValueError):
    """A refused change; the message is Simplified Chinese."""


def members_of(db: Session) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, dept in db.execute(select(User.username, User.department).where(User.department.is_not(None))
                                 .order_by(User.username)):
        out.setdefault(dept, []).append(name)
    return out


def add_department(db: Session, name: str, kind: str = "department", *, reserved: str = "督办") -> Department:
    """Add one (the caller commits); raises DepartmentError for a bad or taken name."""
    name = name.strip()
    if not name or len(name) > 128:
        raise DepartmentError("部门名称须为1至128个字")
    if name == reserved:
        raise DepartmentError(f"“{name}”是督办的保留名称")
    if kind not in DEPARTMENT_KINDS:
        raise DepartmentError(f"类型须为 {' 或 '.join(DEPARTMENT_KINDS)}")
    d = Department(name=name, kind=kind, active=True, created_at=utcnow())
    begin_write(db)
    try:
        with db.begin_nested():
            db.add(d)
    except IntegrityError:
        raise DepartmentError(f"部门“{name}”已存在") from None
    return d


def set_members(db: Session, department: Department, usernames: list[str], *, replace: bool = True) -> list[str]:
    """Make ``usernames`` (handler accounts) the department's handlers; ``replace`` drops the others."""
    users = {u.username: u for u in db.scalars(select(User).where(User.username.in_(usernames)))}
    bad = [m for m in usernames if m not in users or users[m].role != "handler"]
    if bad:
        raise DepartmentError("不是承办人账号：" + "、".join(bad))
    if replace:
        for u in db.scalars(select(User).where(User.department == department.name,
                                               User.username.not_in(usernames))):
            u.department = None
    for u in users.values():
        u.department = department.name
    db.flush()
    return sorted(db.scalars(select(User.username).where(User.department == department.name)))
