"""One work order: read it with its history, one endpoint per move of ``work_orders.rules`` (409 with the reason in
Chinese when the rules refuse, nothing changed), its attachments."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, HTTPException, Request, UploadFile, status
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy.orm import Session

from agent_console.deps import get_db, require_role
from agent_console.models import ROLES, Call, User
from agent_console.pii import mask_text, sees_clear
from agent_console.work_orders.api_common import (
    ALL_ROLES,
    MOVE_BODIES,
    MSG_NO_ORDER,
    SAFE_INLINE,
    Body,
    JoinIn,
    SummaryIn,
    actor_of,
    ctx_of,
    full_detail,
    known_assignee,
    refused,
    visible_order,
)
from agent_console.work_orders.call_facts import call_transcript, find_case_number
from agent_console.work_orders.errors import invalid
from agent_console.work_orders.service import join_order, order_of_call
from agent_console.work_orders.views import attachment_out, history_out
from work_orders import store as orders
from work_orders.dial_plan import caller_number
from work_orders.models import WorkOrder, WorkOrderAttachment
from work_orders.rules import MOVES, Refused
from work_orders.store import Conflict

router = APIRouter(tags=["work orders"])


@router.get("/api/work_orders/{work_order_id}", summary="One work order with its history and attachments")
def get_work_order(work_order_id: int, request: Request, db: Session = Depends(get_db),
                   user: User = Depends(require_role(*ALL_ROLES))) -> dict[str, Any]:
    order = visible_order(db.get(WorkOrder, work_order_id), user)
    return full_detail(request, db, order, user)


# ============================================================================================ moves
def _move_endpoint(action: str, body_model: type[Body]):
    roles = tuple(r for r in MOVES[action].roles if r in ROLES)

    def endpoint(work_order_id: int, body: body_model, request: Request,  # type: ignore[valid-type]
                 db: Session = Depends(get_db), user: User = Depends(require_role(*roles))) -> Any:
        ctx = ctx_of(request)
        visible_order(db.get(WorkOrder, work_order_id), user)
        payload = body.model_dump()
        if action == "dispatch" and not known_assignee(db, ctx, payload["assignee"]):
            return invalid([{"field": "assignee", "message": f"承办部门：未知或已停用的部门“{payload['assignee']}”"}])
        try:
            order, entry = orders.move(db, work_order_id, action, actor_of(user), payload, ctx)
        except Refused as e:
            db.rollback()
            return refused(e)
        except Conflict as e:
            return JSONResponse({"detail": e.message, "code": "conflict"}, status_code=409)
        except LookupError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, MSG_NO_ORDER) from None
        return full_detail(request, db, order, user) | {"change": history_out(entry, user.role)}

    endpoint.__name__ = f"work_order_{action}"
    endpoint.__annotations__["body"] = body_model  # a class, not the string that postponed annotations make
    return endpoint, roles


for _action, _body in MOVE_BODIES.items():
    _fn, _roles = _move_endpoint(_action, _body)
    router.add_api_route(f"/api/work_orders/{{work_order_id}}/{_action}", _fn, methods=["POST"],
                         summary=f"{_action} (roles: {', '.join(sorted(_roles))}); 409 with the reason when the "
                                 f"rules refuse")


# ============================================================================================ repeat contacts, summary
@router.post("/api/work_orders/{work_order_id}/contacts",
             summary="重复来电: the operator's call joins this open order instead of filing a new one (once per call)")
def join_work_order(work_order_id: int, body: JoinIn, request: Request, db: Session = Depends(get_db),
                    user: User = Depends(require_role("operator", "supervisor", "admin"))) -> Any:
    ctx = ctx_of(request)
    order = visible_order(db.get(WorkOrder, work_order_id), user)
    call = db.get(Call, body.call_id)
    if call is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "未找到该通话记录")
    if order.status == "closed":
        return JSONResponse({"detail": "工单已办结，不能并入，请另行提交工单", "code": "closed"}, status_code=409)
    other = order_of_call(db, body.call_id)
    if other is not None and other.id != order.id:
        return JSONResponse({"detail": f"该通话已关联工单{other.number}", "code": "has_order"}, status_code=409)
    said = "\n".join(x["text"] for x in call_transcript(db, call.call_id) if x["speaker"] == "caller")
    phone = caller_number(call.caller or "")
    case_number = find_case_number([said, call.digits or ""])
    matched = "phone" if phone and phone == order.citizen_phone else (
        "case" if case_number and case_number == order.case_number else "staff")
    try:
        join_order(db, order, call_id=call.call_id, at=ctx.now(), matched_by=matched,
                   note=body.note or said or "来电人再次来电", actor=actor_of(user))
        db.commit()
    except Conflict as e:
        db.rollback()
        return JSONResponse({"detail": e.message, "code": "conflict"}, status_code=409)
    return full_detail(request, db, order, user)


@router.put("/api/work_orders/{work_order_id}/summary",
            summary="Correct the call summary (the handler's team, operators, supervisors, admins)")
def edit_summary(work_order_id: int, body: SummaryIn, request: Request, db: Session = Depends(get_db),
                 user: User = Depends(require_role(*ALL_ROLES))) -> Any:
    ctx = ctx_of(request)
    order = visible_order(db.get(WorkOrder, work_order_id), user)
    text = body.summary
    if not sees_clear(user.role):  # lines left as they were shown (masked) keep their numbers in clear
        shown = {mask_text(line): line for line in (order.summary or "").splitlines()}
        text = "\n".join(shown.get(line, line) for line in text.splitlines())
    if text != (order.summary or ""):
        try:
            orders.record(db, order, actor=actor_of(user), action="summary", at=ctx.now(),
                          fields={"summary": text}, note="修改通话摘要")
            db.commit()
        except Conflict as e:
            db.rollback()
            return JSONResponse({"detail": e.message, "code": "conflict"}, status_code=409)
    return full_detail(request, db, order, user)


# ============================================================================================ attachments
@router.post("/api/work_orders/{work_order_id}/attachments", status_code=status.HTTP_201_CREATED,
             summary="Attach a file (stored under HOTLINE_HOME/attachments; over the size limit: 413, nothing kept)")
def add_attachment(work_order_id: int, request: Request, file: UploadFile = File(...), db: Session = Depends(get_db),
                   user: User = Depends(require_role(*ALL_ROLES))) -> Any:
    ctx = ctx_of(request)
    order = visible_order(db.get(WorkOrder, work_order_id), user)
    limit = int(ctx.settings.attachment_max_mb * 1024 * 1024)
    too_big = JSONResponse({"detail": f"附件不能超过{ctx.settings.attachment_max_mb:g} MB", "code": "too_large"},
                           status_code=413)
    name = Path(file.filename or "").name.strip()[:255]
    if not name:
        return invalid([{"field": "file", "message": "附件：缺少文件名"}])
    root = ctx.attachments_dir
    assert root is not None, "the app sets attachments_dir"
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(dir=root / "tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := file.file.read(1 << 16):
                size += len(chunk)
                if size > limit:
                    return too_big
                digest.update(chunk)
                out.write(chunk)
        sha = digest.hexdigest()
        final = root / sha[:2] / sha
        final.parent.mkdir(parents=True, exist_ok=True)
        if not final.exists():
            os.replace(tmp, final)
        now = ctx.now()
        att = WorkOrderAttachment(order_id=order.id, name=name, content_type=(file.content_type or "")[:128]
                                  or "application/octet-stream", size=size, sha256=sha, created_by=user.username,
                                  created_at=now)
        db.add(att)
        try:
            orders.record(db, order, actor=actor_of(user), action="attach", at=now, note=f"{name}（{size} 字节）")
            db.commit()
        except Conflict as e:
            db.rollback()
            return JSONResponse({"detail": e.message, "code": "conflict"}, status_code=409)
        return attachment_out(att)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@router.get("/api/work_orders/{work_order_id}/recordings/{name}", summary="Play a recording of the order")
def get_recording(work_order_id: int, name: str, request: Request, db: Session = Depends(get_db),
                  user: User = Depends(require_role(*ALL_ROLES))) -> Any:
    """One of the order's recordings (a recorded message, a call with an operator), from the files directory
    every hub reads: whichever hub serves the page, the worker that recorded it may be on any host."""
    order = visible_order(db.get(WorkOrder, work_order_id), user)
    root = ctx_of(request).recordings_dir
    if name not in (order.recordings or []) or root is None or Path(name).name != name:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "该工单没有这个录音")
    path = root / name
    if not path.is_file():
        raise HTTPException(status.HTTP_410_GONE, "录音文件已不存在（请检查 files_dir 是否为各主机共享的目录）")
    return FileResponse(path, media_type="audio/wav", headers={"X-Content-Type-Options": "nosniff",
                                                               "Cache-Control": "private, no-store"})


@router.get("/api/work_orders/{work_order_id}/attachments/{attachment_id}", summary="Download an attachment")
def get_attachment(work_order_id: int, attachment_id: int, request: Request, db: Session = Depends(get_db),
                   user: User = Depends(require_role(*ALL_ROLES))) -> Any:
    visible_order(db.get(WorkOrder, work_order_id), user)
    att = db.get(WorkOrderAttachment, attachment_id)
    if att is None or att.order_id != work_order_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "未找到该附件")
    path = ctx_of(request).attachments_dir / att.sha256[:2] / att.sha256
    if not path.exists():
        raise HTTPException(status.HTTP_410_GONE, "附件文件已不存在")
    inline = att.content_type in SAFE_INLINE
    return FileResponse(path, media_type=att.content_type if inline else "application/octet-stream",
                        headers={"Content-Disposition": f"{'inline' if inline else 'attachment'}; "
                                                        f"filename*=UTF-8''{quote(att.name)}",
                                 "X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": "default-src 'none'; sandbox"})
