"""``/api/kb``: FAQ entries (read: operators, supervisors, admins; change: admins), history, import, export,
and the unanswered questions (supervisors, admins).

Operator-facing errors (``detail``) are Simplified Chinese; a rejected import answers 422 with ``detail`` (every
problem, one per line, naming row and field) and ``errors`` (``[{"row", "field", "message"}]``) and changes
nothing. Updates are optimistic: PUT carries the ``version`` the admin edited, a stale one answers 409.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, Response, UploadFile, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from agent_console.deps import CONSOLE_ROLES, get_db, require_role
from agent_console.kb.unanswered import MatchCache, UnansweredOut, unanswered_report
from agent_console.models import User
from knowledge_base.entry import CATEGORIES, FaqEntry
from knowledge_base.io import (
    FORMATS,
    MEDIA_TYPES,
    KbImportError,
    RowError,
    export_bytes,
    format_of,
    import_bytes,
    validate_record,
)
from knowledge_base.models import KbEntry, KbHistory
from knowledge_base.store import (
    EntryExists,
    EntryNotFound,
    KbError,
    VersionConflict,
    VersionNotFound,
    count_entries,
    create_entry,
    delete_entry,
    diff,
    diff_snapshots,
    get_entry,
    history,
    kb_stamp,
    list_entries,
    set_enabled,
    update_entry,
)

router = APIRouter(prefix="/api/kb", tags=["knowledge base"])

readers = require_role(*CONSOLE_ROLES)
admins = require_role("admin")
supervisors = require_role("supervisor", "admin")

MAX_LIST = 10_000
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class EntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    category: str
    question: str
    variants: list[str]
    answer: str
    keywords: list[str]
    title: str
    enabled: bool
    version: int
    updated_by: str
    updated_at: datetime
    created_at: datetime


class EntryList(BaseModel):
    total: int
    items: list[EntryOut]


class HistoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    entry_id: str
    version: int
    action: str
    who: str
    at: datetime
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    #: the fields this change touched: {field: {"before", "after"}}
    changes: dict[str, dict[str, Any]]


class EnabledIn(BaseModel):
    enabled: bool
    version: int | None = None


class ImportOut(BaseModel):
    total: int
    created: int
    updated: int
    unchanged: int
    deleted: int
    revision: int
    #: a summary for the operator, e.g. 共 3 条：新增 1，更新 1，未变 1，删除 0
    message: str


class RevisionOut(BaseModel):
    revision: int


def _embedder(request: Request) -> Any:
    """The hub's embedding model (None with kb.semantic = false): an entry's vectors are computed as it is saved."""
    return getattr(request.app.state.kb_matcher, "embedder", None)


def _kb_http_error(e: KbError) -> HTTPException:
    if isinstance(e, EntryNotFound | VersionNotFound):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(e))
    if isinstance(e, EntryExists | VersionConflict):
        return HTTPException(status.HTTP_409_CONFLICT, str(e))
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e))


def _rejected(e: KbImportError) -> JSONResponse:
    return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
                        content={"detail": str(e), "errors": [r.as_dict() for r in e.errors]})


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (a Chinese 422 otherwise)."""
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "请求内容不是有效的 JSON") from None
    if not isinstance(body, dict):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "请求内容应为一个 JSON 对象")
    return body


def _entry_from(body: dict[str, Any]) -> FaqEntry:
    try:
        return validate_record(body)
    except KbImportError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "；".join(str(x) for x in e.errors)) from None


def _version_from(body: dict[str, Any], required: bool) -> int | None:
    version = body.pop("version", None)
    if version is None and not required:
        return None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            str(RowError(None, "version", "无效：请提供您编辑的条目版本号（正整数）")))
    return version


def _enabled_from(body: dict[str, Any]) -> bool:
    enabled = body.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            str(RowError(None, "enabled", "类型错误：应为 true 或 false")))
    return enabled


def _entry_schema(extra: dict[str, Any]) -> dict[str, Any]:
    schema = FaqEntry.model_json_schema()
    schema["properties"].update(extra)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


@router.get("/entries", response_model=EntryList, summary="FAQ entries ordered by id, filtered",
            dependencies=[Depends(readers)])
def list_kb(q: str | None = Query(None, description="words that must all occur (id, question, answer, variants, "
                                                      "keywords)"),
            category: str | None = Query(None, description="one of " + ", ".join(CATEGORIES)),
            enabled: bool | None = Query(None),
            limit: int = Query(200, ge=1, le=MAX_LIST), offset: int = Query(0, ge=0),
            db: Session = Depends(get_db)) -> EntryList:
    if category is not None and category not in CATEGORIES:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"category 参数无效：“{category}”，可选 " + "、".join(CATEGORIES))
    items = list_entries(db, q=q, category=category, enabled=enabled, limit=limit, offset=offset)
    return EntryList(total=count_entries(db, q=q, category=category, enabled=enabled),
                     items=[EntryOut.model_validate(e) for e in items])


@router.get("/revision", response_model=RevisionOut, summary="The KB change counter (goes up with every change)",
            dependencies=[Depends(readers)])
def revision(db: Session = Depends(get_db)) -> RevisionOut:
    return RevisionOut(revision=kb_stamp(db))


@router.get("/entries/{entry_id}", response_model=EntryOut, summary="One FAQ entry",
            dependencies=[Depends(readers)])
def get_kb(entry_id: str, db: Session = Depends(get_db)) -> KbEntry:
    entry = get_entry(db, entry_id)
    if entry is None:
        raise _kb_http_error(EntryNotFound(entry_id))
    return entry


@router.post("/entries", response_model=EntryOut, status_code=status.HTTP_201_CREATED,
             summary="Create an FAQ entry (admin)", responses={409: {"description": "该编号已存在"}},
             openapi_extra=_entry_schema({"enabled": {"type": "boolean", "default": True}}))
def create_kb(request: Request, user: User = Depends(admins), body: dict[str, Any] = Depends(json_object),
              db: Session = Depends(get_db)) -> KbEntry:
    enabled = _enabled_from(body)
    data = _entry_from(body)
    try:
        entry = create_entry(db, data, user.username, enabled=enabled, embedder=_embedder(request))
        db.commit()
    except KbError as e:
        db.rollback()
        raise _kb_http_error(e) from None
    return entry


@router.put("/entries/{entry_id}", response_model=EntryOut, summary="Replace an entry's content (admin)",
            responses={409: {"description": "已被他人修改（版本不符）"}},
            openapi_extra=_entry_schema({"version": {"type": "integer", "description": "the version edited"}}))
def update_kb(entry_id: str, request: Request, user: User = Depends(admins),
              body: dict[str, Any] = Depends(json_object), db: Session = Depends(get_db)) -> KbEntry:
    version = _version_from(body, required=True)
    body.setdefault("id", entry_id)
    data = _entry_from(body)
    try:
        entry = update_entry(db, entry_id, data, user.username, expected_version=version,
                             embedder=_embedder(request))
        db.commit()
    except KbError as e:
        db.rollback()
        raise _kb_http_error(e) from None
    return entry


@router.patch("/entries/{entry_id}", response_model=EntryOut, summary="Enable or disable an entry (admin)",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": EnabledIn.model_json_schema()}}}})
def enable_kb(entry_id: str, user: User = Depends(admins), body: dict[str, Any] = Depends(json_object),
              db: Session = Depends(get_db)) -> KbEntry:
    version = _version_from(body, required=False)
    if not isinstance(body.get("enabled"), bool):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            str(RowError(None, "enabled", "类型错误：应为 true 或 false")))
    try:
        entry = set_enabled(db, entry_id, body["enabled"], user.username, expected_version=version)
        db.commit()
    except KbError as e:
        db.rollback()
        raise _kb_http_error(e) from None
    return entry


@router.delete("/entries/{entry_id}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Delete an entry (admin); its history stays")
def delete_kb(entry_id: str, user: User = Depends(admins),
              version: int | None = Query(None, ge=1, description="refuse unless at this version"),
              db: Session = Depends(get_db)) -> Response:
    try:
        delete_entry(db, entry_id, user.username, expected_version=version)
        db.commit()
    except KbError as e:
        db.rollback()
        raise _kb_http_error(e) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _history_out(row: KbHistory) -> HistoryOut:
    return HistoryOut(entry_id=row.entry_id, version=row.version, action=row.action, who=row.who, at=row.at,
                      before=row.before, after=row.after, changes=diff_snapshots(row.before, row.after))


@router.get("/entries/{entry_id}/history", response_model=list[HistoryOut],
            summary="Every change of an entry, oldest first (also after it was deleted)",
            dependencies=[Depends(readers)])
def history_kb(entry_id: str, db: Session = Depends(get_db)) -> list[HistoryOut]:
    rows = history(db, entry_id)
    if not rows:
        raise _kb_http_error(EntryNotFound(entry_id))
    return [_history_out(r) for r in rows]


@router.get("/entries/{entry_id}/diff", summary="What changed between two versions: {field: {before, after}}",
            dependencies=[Depends(readers)])
def diff_kb(entry_id: str, from_version: int = Query(..., alias="from", ge=1),
            to_version: int = Query(..., alias="to", ge=1),
            db: Session = Depends(get_db)) -> dict[str, dict[str, Any]]:
    try:
        return diff(db, entry_id, from_version, to_version)
    except KbError as e:
        raise _kb_http_error(e) from None


@router.post("/import", response_model=ImportOut,
             summary="Import a .json/.csv/.xlsx file (admin): all validated first; upsert by id or ?replace=true",
             responses={422: {"description": "rejected, nothing changed: detail + errors [{row, field, message}]"}})
def import_kb(request: Request, user: User = Depends(admins), file: UploadFile | None = File(None),
              replace: bool = Query(False),
              format: str | None = Query(None, description="json, csv or xlsx (default: the file name's extension)"),
              db: Session = Depends(get_db)) -> Any:
    if file is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "请选择要导入的文件")
    try:
        fmt = format if format in FORMATS else format_of(file.filename or "")
    except KbImportError as e:
        return _rejected(e)
    data = file.file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"文件太大（最大 {MAX_UPLOAD_BYTES // 2**20} MB）")
    try:
        result = import_bytes(db, data, fmt, user.username, replace=replace, embedder=_embedder(request))
        db.commit()
    except KbImportError as e:
        db.rollback()
        return _rejected(e)
    except KbError as e:
        db.rollback()
        raise _kb_http_error(e) from None
    s = result.summary()
    message = f"共 {s['total']} 条：新增 {s['created']}，更新 {s['updated']}，未变 {s['unchanged']}" + (
        f"，删除 {s['deleted']}" if replace else "")
    return ImportOut(**s, revision=kb_stamp(db), message=message)


@router.get("/export", summary="All entries as a file: json, csv (UTF-8 with BOM) or xlsx",
            dependencies=[Depends(readers)])
def export_kb(format: str = Query("json", description="json, csv or xlsx"),
              category: str | None = Query(None), enabled: bool | None = Query(None),
              db: Session = Depends(get_db)) -> Response:
    if format not in FORMATS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"format 参数无效：“{format}”，可选 json、csv、xlsx")
    try:
        data = export_bytes(db, format, category=category, enabled=enabled)
    except KbImportError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e)) from None
    name = f"kb-{datetime.now(UTC):%Y%m%d-%H%M%S}.{format}"
    return Response(content=data, media_type=MEDIA_TYPES[format],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


_match_cache = MatchCache()  # one hub process, one live matcher


@router.get("/unanswered", response_model=UnansweredOut, dependencies=[Depends(supervisors)],
            summary="Questions handed off to staff that the KB still does not answer, clustered by similarity")
def unanswered_kb(request: Request, days: int = Query(30, ge=1, le=366, description="look back this many days"),
                  min_count: int = Query(1, ge=1, le=100_000, description="leave out smaller clusters"),
                  limit: int = Query(200, ge=1, le=1000, description="most clusters returned"),
                  db: Session = Depends(get_db)) -> UnansweredOut:
    return unanswered_report(db, request.app.state.kb_matcher.current(), days=days, min_count=min_count,
                             limit=limit, cache=_match_cache)
