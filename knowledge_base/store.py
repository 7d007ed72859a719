"""The FAQ store: list/search, get, create, update, enable/disable, delete, history, diff and bulk import.

Every change writes a ``kb_history`` row (who, when, the full before/after snapshot) and bumps the
``kb_revision`` counter in the same transaction. Functions here never commit: the caller owns the
transaction (an API request, a CLI command), so a bulk import is all or nothing.

Errors are :class:`KbError` subclasses whose messages are Simplified Chinese (they reach operators).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import numpy as np
from sqlalchemy import String, cast, func, or_, select, update
from sqlalchemy.orm import Session

from knowledge_base.embedding import pack, stored_texts, vectors_tag
from knowledge_base.entry import FaqEntry
from knowledge_base.models import REVISION_ROW, KbEntry, KbHistory, KbRevision, utcnow
from table_import import ImportResult

#: the fields of an entry's content (the import/export record)
CONTENT_FIELDS = ("id", "category", "question", "variants", "answer", "keywords", "title")
#: the fields of a history snapshot
SNAPSHOT_FIELDS = (*CONTENT_FIELDS, "enabled", "version")
#: fields compared by :func:`diff` (the version always differs)
DIFF_FIELDS = (*CONTENT_FIELDS, "enabled")

Progress = Callable[[int, int], None]


class PassageEmbedder(Protocol):
    """What the store needs to compute an entry's vectors (:class:`knowledge_base.embedding.Embedder`)."""

    name: str

    def passages(self, texts: list[str]) -> np.ndarray: ...


class KbError(Exception):
    """A refused change; ``str(e)`` is a message for operators (Simplified Chinese)."""


class EntryNotFound(KbError):
    def __init__(self, entry_id: str) -> None:
        super().__init__(f"未找到知识条目 {entry_id}")
        self.entry_id = entry_id


class EntryExists(KbError):
    def __init__(self, entry_id: str) -> None:
        super().__init__(f"知识条目 {entry_id} 已存在")
        self.entry_id = entry_id


class VersionConflict(KbError):
    def __init__(self, entry_id: str, current: int, expected: int) -> None:
        super().__init__(f"知识条目 {entry_id} 已被他人修改（当前版本 {current}，您编辑的是版本 {expected}），"
                         "请刷新后重试")
        self.entry_id, self.current, self.expected = entry_id, current, expected


class VersionNotFound(KbError):
    def __init__(self, entry_id: str, version: int) -> None:
        super().__init__(f"知识条目 {entry_id} 没有版本 {version}")
        self.entry_id, self.version = entry_id, version


# ---------------------------------------------------------------- snapshots, revision


def snapshot(entry: KbEntry) -> dict[str, Any]:
    """The full state of ``entry`` as stored in ``kb_history``."""
    return {
        "id": entry.id, "category": entry.category, "question": entry.question,
        "variants": list(entry.variants), "answer": entry.answer, "keywords": list(entry.keywords),
        "title": entry.title, "enabled": bool(entry.enabled), "version": entry.version,
    }


def to_faq(entry: KbEntry) -> FaqEntry:
    """The import/export record of a stored entry."""
    return FaqEntry.model_construct(id=entry.id, category=entry.category, question=entry.question,
                                    variants=list(entry.variants), answer=entry.answer,
                                    keywords=list(entry.keywords), title=entry.title)


def _content(e: FaqEntry | KbEntry) -> dict[str, Any]:
    return {k: (list(getattr(e, k)) if k in ("variants", "keywords") else getattr(e, k)) for k in CONTENT_FIELDS}


def _embed(entries: list[KbEntry], embedder: PassageEmbedder | None) -> None:
    """Compute and set the vectors of ``entries`` (question, variants, title, answer); without an embedder the
    vectors are dropped, to be computed by the matcher's next rebuild (:func:`refresh_embeddings`)."""
    if embedder is None:
        for e in entries:
            e.embedding, e.embedding_model = None, None
        return
    texts = [stored_texts(e.title, e.question, list(e.variants), e.answer) for e in entries]
    flat = embedder.passages([t for ts in texts for t in ts])
    at = 0
    for e, ts in zip(entries, texts, strict=True):
        e.embedding, e.embedding_model = pack(flat[at:at + len(ts)]), vectors_tag(embedder.name)
        at += len(ts)


def refresh_embeddings(session: Session, embedder: PassageEmbedder, *, batch: int = 200) -> int:
    """Compute the vectors of every entry that has none or has another model's (not committed; the
    revision does not move: the content did not change). Returns how many entries were embedded."""
    stale = list(session.scalars(select(KbEntry).where(
        or_(KbEntry.embedding.is_(None), KbEntry.embedding_model.is_(None),
            KbEntry.embedding_model != vectors_tag(embedder.name))).order_by(KbEntry.id)))
    for i in range(0, len(stale), batch):
        _embed(stale[i:i + batch], embedder)
        session.flush()
    return len(stale)


_TEXT_FIELDS = ("question", "variants", "title", "answer")  # the embedded fields


def kb_stamp(session: Session) -> int:
    """The KB's change counter: one indexed read, meant to be polled every second or two.

    It goes up with every committed change (create, update, enable/disable, delete, import); a process
    that cached entries reloads them when the stamp differs from the one it loaded with.
    """
    value = session.scalar(select(KbRevision.revision).where(KbRevision.id == REVISION_ROW))
    return int(value or 0)


def _bump(session: Session) -> None:
    now = utcnow()
    done = session.execute(update(KbRevision).where(KbRevision.id == REVISION_ROW)
                           .values(revision=KbRevision.revision + 1, changed_at=now))
    if done.rowcount == 0:  # tables made without the migration's seed row
        session.add(KbRevision(id=REVISION_ROW, revision=1, changed_at=now))
        session.flush()


def _record(session: Session, entry_id: str, version: int, action: str, who: str,
            before: dict[str, Any] | None, after: dict[str, Any] | None) -> KbHistory:
    row = KbHistory(entry_id=entry_id, version=version, action=action, who=who, at=utcnow(),
                    before=before, after=after)
    session.add(row)
    return row


def _next_version(session: Session, entry_id: str) -> int:
    """1 for a new id; one past the last recorded version for an id that was deleted before."""
    last = session.scalar(select(func.max(KbHistory.version)).where(KbHistory.entry_id == entry_id))
    return int(last or 0) + 1


# ---------------------------------------------------------------- reading


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _filters(q: str | None, category: str | None, enabled: bool | None) -> list[Any]:
    conds: list[Any] = []
    if category:
        conds.append(KbEntry.category == category)
    if enabled is not None:
        conds.append(KbEntry.enabled.is_(enabled))
    for word in (q or "").split():
        pattern = _like(word)
        conds.append(or_(*(func.lower(cast(col, String)).like(pattern, escape="\\")
                           for col in (KbEntry.id, KbEntry.question, KbEntry.answer, KbEntry.variants,
                                       KbEntry.keywords))))
    return conds


def list_entries(session: Session, *, q: str | None = None, category: str | None = None,
                 enabled: bool | None = None, limit: int | None = None, offset: int = 0) -> list[KbEntry]:
    """Entries ordered by id. ``q``: every whitespace-separated word must occur (case-insensitive) in the
    id, question, answer, a variant or a keyword."""
    stmt = select(KbEntry).where(*_filters(q, category, enabled)).order_by(KbEntry.id).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def count_entries(session: Session, *, q: str | None = None, category: str | None = None,
                  enabled: bool | None = None) -> int:
    return int(session.scalar(select(func.count()).select_from(KbEntry)
                              .where(*_filters(q, category, enabled))) or 0)


def get_entry(session: Session, entry_id: str) -> KbEntry | None:
    return session.get(KbEntry, entry_id)


def _must_get(session: Session, entry_id: str) -> KbEntry:
    entry = session.get(KbEntry, entry_id)
    if entry is None:
        raise EntryNotFound(entry_id)
    return entry


def _check_version(entry: KbEntry, expected: int | None) -> None:
    if expected is not None and entry.version != expected:
        raise VersionConflict(entry.id, entry.version, expected)


def history(session: Session, entry_id: str) -> list[KbHistory]:
    """Every recorded change of ``entry_id`` (also after a delete), oldest first."""
    return list(session.scalars(select(KbHistory).where(KbHistory.entry_id == entry_id)
                                .order_by(KbHistory.version, KbHistory.id)))


def version_snapshot(session: Session, entry_id: str, version: int) -> dict[str, Any] | None:
    """The entry as it was at ``version`` (None: the version that deleted it)."""
    row = session.scalar(select(KbHistory).where(KbHistory.entry_id == entry_id, KbHistory.version == version))
    if row is None:
        raise VersionNotFound(entry_id, version)
    return row.after


def diff_snapshots(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """``{field: {"before": ..., "after": ...}}`` for each field that differs (a missing side is None)."""
    out: dict[str, dict[str, Any]] = {}
    for f in DIFF_FIELDS:
        a = before.get(f) if before else None
        b = after.get(f) if after else None
        if a != b:
            out[f] = {"before": a, "after": b}
    return out


def diff(session: Session, entry_id: str, from_version: int, to_version: int) -> dict[str, dict[str, Any]]:
    """What changed in ``entry_id`` between two recorded versions."""
    return diff_snapshots(version_snapshot(session, entry_id, from_version),
                          version_snapshot(session, entry_id, to_version))


# ---------------------------------------------------------------- changing


def create_entry(session: Session, data: FaqEntry, who: str, *, enabled: bool = True,
                 action: str = "create", embedder: PassageEmbedder | None = None) -> KbEntry:
    """A new entry; with ``embedder`` its vectors are computed now (else at the matcher's next rebuild)."""
    if session.get(KbEntry, data.id) is not None:
        raise EntryExists(data.id)
    now = utcnow()
    entry = KbEntry(**_content(data), enabled=enabled, version=_next_version(session, data.id),
                    updated_by=who, updated_at=now, created_at=now)
    _embed([entry], embedder)
    session.add(entry)
    _record(session, entry.id, entry.version, action, who, None, snapshot(entry))
    _bump(session)
    session.flush()
    return entry


def _change(session: Session, entry: KbEntry, who: str, action: str, values: dict[str, Any],
            embedder: PassageEmbedder | None = None) -> KbEntry:
    before = snapshot(entry)
    for k, v in values.items():
        setattr(entry, k, v)
    if any(before[f] != snapshot(entry)[f] for f in _TEXT_FIELDS):
        _embed([entry], embedder)
    entry.version = before["version"] + 1
    entry.updated_by = who
    entry.updated_at = utcnow()
    _record(session, entry.id, entry.version, action, who, before, snapshot(entry))
    _bump(session)
    session.flush()
    return entry


def update_entry(session: Session, entry_id: str, data: FaqEntry, who: str, *,
                 expected_version: int | None, embedder: PassageEmbedder | None = None) -> KbEntry:
    """Replace the content of ``entry_id`` (optimistic: refused when its version is not ``expected_version``).

    The id cannot change (``data.id`` must equal ``entry_id``). An update that changes nothing records
    nothing and keeps the version.
    """
    entry = _must_get(session, entry_id)
    _check_version(entry, expected_version)
    if data.id != entry_id:
        raise KbError(f"不能修改条目编号（{entry_id} → {data.id}）；请新建条目后删除旧条目")
    new = _content(data)
    if new == _content(entry):
        return entry
    return _change(session, entry, who, "update", {k: v for k, v in new.items() if k != "id"}, embedder)


def set_enabled(session: Session, entry_id: str, enabled: bool, who: str, *,
                expected_version: int | None = None) -> KbEntry:
    """Enable or disable an entry (a no-op, recording nothing, when it already is)."""
    entry = _must_get(session, entry_id)
    _check_version(entry, expected_version)
    if bool(entry.enabled) == enabled:
        return entry
    return _change(session, entry, who, "enable" if enabled else "disable", {"enabled": enabled})


def delete_entry(session: Session, entry_id: str, who: str, *, expected_version: int | None = None,
                 action: str = "delete") -> None:
    """Delete an entry; its history stays (the delete is recorded with ``after`` None)."""
    entry = _must_get(session, entry_id)
    _check_version(entry, expected_version)
    before = snapshot(entry)
    _record(session, entry_id, before["version"] + 1, action, who, before, None)
    session.delete(entry)
    _bump(session)
    session.flush()


# ---------------------------------------------------------------- bulk import


def apply_import(session: Session, entries: Iterable[FaqEntry], who: str, *, replace: bool = False,
                 progress: Progress | None = None, embedder: PassageEmbedder | None = None) -> ImportResult:
    """Upsert validated entries by id (``replace``: also delete every entry not among them).

    Each change writes a history row with action ``import`` (a removal by ``replace`` has ``after`` None).
    Entries keep their enabled flag; new ones are enabled. Ids must be unique (the readers in
    :mod:`knowledge_base.io` check that). The counter goes up once. Nothing is committed here.
    New entries and those whose texts changed get their vectors from ``embedder`` (or, without one, at the
    matcher's next rebuild); unchanged ones keep theirs.
    """
    items = list(entries)
    ids = [e.id for e in items]
    if len(set(ids)) != len(ids):
        raise KbError("导入数据中有重复的条目编号")
    existing = {e.id: e for e in session.scalars(select(KbEntry))}
    last_version: dict[str, int] = {
        entry_id: version for entry_id, version in session.execute(
            select(KbHistory.entry_id, func.max(KbHistory.version)).group_by(KbHistory.entry_id))}
    result = ImportResult()
    total = len(items) + (len(existing) if replace else 0)
    to_embed: list[KbEntry] = []
    done = 0
    now = utcnow()

    def step() -> None:
        nonlocal done
        done += 1
        if done % 500 == 0:
            session.flush()
        if progress is not None:
            progress(done, total)

    if replace:
        keep = set(ids)
        for entry_id in sorted(existing):
            if entry_id not in keep:
                entry = existing[entry_id]
                before = snapshot(entry)
                session.add(KbHistory(entry_id=entry_id, version=before["version"] + 1, action="import", who=who,
                                      at=now, before=before, after=None))
                session.delete(entry)
                result.deleted.append(entry_id)
            step()
    for data in items:
        content = _content(data)
        current = existing.get(data.id)
        if current is None:
            entry = KbEntry(**content, enabled=True, version=int(last_version.get(data.id) or 0) + 1,
                            updated_by=who, updated_at=now, created_at=now)
            session.add(entry)
            session.add(KbHistory(entry_id=entry.id, version=entry.version, action="import", who=who, at=now,
                                  before=None, after=snapshot(entry)))
            result.created.append(data.id)
            to_embed.append(entry)
        elif _content(current) == content:
            result.unchanged.append(data.id)
        else:
            before = snapshot(current)
            for k, v in content.items():
                setattr(current, k, v)
            if any(before[f] != content[f] for f in _TEXT_FIELDS):
                to_embed.append(current)
            current.version = before["version"] + 1
            current.updated_by, current.updated_at = who, now
            session.add(KbHistory(entry_id=current.id, version=current.version, action="import", who=who,
                                  at=now, before=before, after=snapshot(current)))
            result.updated.append(data.id)
        step()
    for i in range(0, len(to_embed), 200):
        _embed(to_embed[i:i + 200], embedder)
    if result.created or result.updated or result.deleted:
        _bump(session)
    session.flush()
    return result


def is_empty(session: Session) -> bool:
    return session.scalar(select(KbEntry.id).limit(1)) is None


def never_filled(session: Session) -> bool:
    """True on a fresh database: no entries and no history (an admin never added or removed any)."""
    return is_empty(session) and session.scalar(select(KbHistory.id).limit(1)) is None
