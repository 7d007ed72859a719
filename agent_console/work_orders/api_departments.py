"""``/api/departments``: the departments and judges' teams orders are dispatched to, and their handlers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent_console.deps import get_db, require_role
from agent_console.models import User
from agent_console.work_orders.api_common import (
    ALL_ROLES,
    SUPERVISING,
    DepartmentIn,
    DepartmentPatch,
    ctx_of,
)
from agent_console.work_orders.departments import DepartmentError, add_department, members_of, set_members
from agent_console.work_orders.errors import invalid
from work_orders.models import Department

router = APIRouter(tags=["work orders"])


def _department_out(d: Department, members: list[str]) -> dict[str, Any]:
    return {"id": d.id, "name": d.name, "kind": d.kind, "active": d.active, "members": members}


@router.get("/api/departments", summary="Departments and judges' teams orders are dispatched to")
def departments(db: Session = Depends(get_db), user: User = Depends(require_role(*ALL_ROLES))) -> list[dict[str, Any]]:
    members = members_of(db)
    return [_department_out(d, members.get(d.name, []))
            for d in db.scalars(select(Department).order_by(Department.kind, Department.name))]


@router.post("/api/departments", status_code=status.HTTP_201_CREATED, summary="Add a department or judge's team")
def add_department_(body: DepartmentIn, request: Request, db: Session = Depends(get_db),
                    user: User = Depends(require_role(*SUPERVISING))) -> Any:
    try:
        d = add_department(db, body.name, body.kind, reserved=ctx_of(request).settings.supervision_team)
    except DepartmentError as e:
        db.rollback()
        return JSONResponse({"detail": str(e), "code": "refused"}, status_code=409)
    db.commit()
    return _department_out(d, [])


@router.patch("/api/departments/{department_id}", summary="Enable/disable a department, set its handlers")
def patch_department(department_id: int, body: DepartmentPatch, db: Session = Depends(get_db),
                     user: User = Depends(require_role("admin"))) -> Any:
    d = db.get(Department, department_id)
    if d is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "未找到该部门")
    if body.active is not None:
        d.active = body.active
    if body.members is not None:
        try:
            set_members(db, d, body.members)
        except DepartmentError as e:
            db.rollback()
            return invalid([{"field": "members", "message": f"成员：{e}"}])
    db.commit()
    return _department_out(d, members_of(db).get(d.name, []))
