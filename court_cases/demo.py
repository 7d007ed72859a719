"""The demo case store: cases in the hotline's own database, filled by ``hotline cases import``.

:func:`apply_import` writes validated rows (:mod:`court_cases.io`) in the caller's transaction — nothing is
committed here, so an import is all or nothing. :class:`DemoCaseStore` is the :class:`~court_cases.system.
CaseSystem` over these tables; a database error is :class:`~court_cases.system.CaseSystemUnavailable`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from court_cases.case import DEFAULT_TZ, CaseInfo, Hearing, Party, Stage
from court_cases.hashing import hash_secret, matches, new_salt
from court_cases.io import DEMO_CASES_PATH, CaseImportError, CaseRow, RowError, read_file
from court_cases.models import CaseImport, CaseParty, CaseRecord
from court_cases.numbers import normalise
from court_cases.privacy import mask_number
from court_cases.system import CaseSystemUnavailable, normalise_secret
from table_import import ImportResult

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
_CHUNK = 500


# ---------------------------------------------------------------- reading


def to_info(rec: CaseRecord) -> CaseInfo:
    hearing = Hearing(at=rec.hearing_at, place=rec.hearing_place) if rec.hearing_at is not None else None
    return CaseInfo.model_construct(
        case_number=rec.number, lookup_number=rec.lookup_number, cause=rec.cause,
        parties=[Party.model_construct(name=p.name, role=p.role) for p in rec.parties], stage=Stage(rec.stage),
        next_hearing=hearing, judge=rec.judge, clerk=rec.clerk, department=rec.department,
        judge_team_line=rec.judge_team_line, enforcement_status=rec.enforcement_status,
        refund_status=rec.refund_status, updated_at=rec.updated_at)


def find_record(session: Session, number: str) -> CaseRecord | None:
    """The stored case for a case number in any form, or for a lookup number."""
    ref = normalise(number)
    if ref is None:
        return None
    column = CaseRecord.lookup_number if ref.is_lookup else CaseRecord.number
    return session.scalar(select(CaseRecord).where(column == ref.value).options(selectinload(CaseRecord.parties)))


def list_cases(session: Session, *, stage: str | None = None, q: str | None = None) -> list[CaseRecord]:
    stmt = select(CaseRecord).options(selectinload(CaseRecord.parties)).order_by(CaseRecord.number)
    if stage:
        stmt = stmt.where(CaseRecord.stage == stage)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(CaseRecord.number.ilike(like), CaseRecord.cause.ilike(like),  # any ASCII case, as
                              CaseRecord.judge.ilike(like), CaseRecord.department.ilike(like)))  # SQLite's LIKE
    return list(session.scalars(stmt))


def count_cases(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(CaseRecord)) or 0)


def never_filled(session: Session) -> bool:
    """True on a fresh store: no cases and no import ever (an admin who emptied it does not get demo cases back)."""
    return (session.scalar(select(CaseRecord.number).limit(1)) is None
            and session.scalar(select(CaseImport.id).limit(1)) is None)


# ---------------------------------------------------------------- import


def _content(info: CaseInfo) -> dict[str, Any]:
    h = info.next_hearing
    return {"lookup_number": info.lookup_number, "cause": info.cause, "stage": info.stage.value,
            "hearing_at": h.at if h else None, "hearing_place": h.place if h else "", "judge": info.judge,
            "clerk": info.clerk, "department": info.department, "judge_team_line": info.judge_team_line,
            "enforcement_status": info.enforcement_status, "refund_status": info.refund_status,
            "updated_at": info.updated_at}


def _stored_content(rec: CaseRecord) -> dict[str, Any]:
    return {k: getattr(rec, k) for k in ("lookup_number", "cause", "stage", "hearing_at", "hearing_place", "judge",
                                         "clerk", "department", "judge_team_line", "enforcement_status",
                                         "refund_status", "updated_at")}


@dataclass
class _Hashed:
    salt: str
    password_hash: str | None
    id_hashes: list[str | None]


def _hash_row(row: CaseRow, salt: str) -> _Hashed:
    pw = hash_secret(normalise_secret(row.query_password), salt) if row.query_password else None
    ids = [hash_secret(normalise_secret(s), salt) if s else None for s in row.id_last6]
    return _Hashed(salt, pw, ids)


def _same_secrets(row: CaseRow, rec: CaseRecord) -> bool:
    """Whether the row's secrets are the stored ones (checked against the stored hashes, one scrypt each)."""
    pairs = [(row.query_password, rec.password_hash)]
    stored_ids = [p.id_hash for p in rec.parties]
    if len(stored_ids) != len(row.id_last6):
        return False
    pairs += list(zip(row.id_last6, stored_ids, strict=True))
    for secret, stored in pairs:
        if (secret is None) != (stored is None):
            return False
        if secret is not None and stored is not None and not matches(normalise_secret(secret), rec.secret_salt,
                                                                     [stored]):
            return False
    return True


def _unchanged(row: CaseRow, rec: CaseRecord) -> bool:
    stored, new = _stored_content(rec), _content(row.info)
    if not row.updated_at_given:
        del stored["updated_at"], new["updated_at"]
    parties = [(p.name, p.role) for p in rec.parties]
    return stored == new and parties == [(p.name, p.role) for p in row.info.parties] and _same_secrets(row, rec)


def apply_import(session: Session, rows: Iterable[CaseRow], who: str, *, source: str = "", replace: bool = False,
                 progress: Progress | None = None, workers: int | None = None) -> ImportResult:
    """Add or update validated rows by case number (``replace``: also delete every case not among them).

    Secrets are hashed on ``workers`` threads (default: one per CPU); ``progress(done, total)`` follows the
    cases. A lookup number another stored case keeps raises :class:`CaseImportError` naming the row before
    anything is written. An import row is recorded in ``case_imports``. Nothing is committed here.
    """
    items = list(rows)
    numbers = [r.info.case_number for r in items]
    if len(set(numbers)) != len(numbers):
        raise CaseImportError([RowError(None, "case_number", "导入数据中有重复的案号")])
    existing = {r.number: r for r in session.scalars(select(CaseRecord).options(selectinload(CaseRecord.parties)))}
    keep = set(numbers)
    owners = {r.lookup_number: r.number for r in existing.values()
              if r.lookup_number and (not replace or r.number in keep)}
    clashes = [RowError(r.row, "lookup_number",
                        f"重复：查询号“{r.info.lookup_number}”已被案件“{owners[r.info.lookup_number]}”使用", r.unit)
               for r in items if r.info.lookup_number in owners
               and owners[r.info.lookup_number] != r.info.case_number and owners[r.info.lookup_number] not in keep]
    if clashes:
        raise CaseImportError(clashes)

    result = ImportResult()
    total = len(items)
    done = 0

    def check(row: CaseRow) -> tuple[CaseRow, CaseRecord | None, _Hashed | None]:
        rec = existing.get(row.info.case_number)
        if rec is not None and _unchanged(row, rec):
            return row, rec, None
        return row, rec, _hash_row(row, rec.secret_salt if rec is not None else new_salt())

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        for row, rec, hashed in pool.map(check, items):
            done += 1
            if progress is not None:
                progress(done, total)
            if hashed is None:
                result.unchanged.append(row.info.case_number)
                continue
            content = _content(row.info)
            if rec is None:
                rec = CaseRecord(number=row.info.case_number, secret_salt=hashed.salt, imported_by=who, **content)
                session.add(rec)
                result.created.append(rec.number)
            else:
                for k, v in content.items():
                    setattr(rec, k, v)
                rec.imported_by = who
                result.updated.append(rec.number)
            rec.password_hash = hashed.password_hash
            _set_parties(session, rec, row.info.parties, hashed.id_hashes)
            if done % _CHUNK == 0:
                session.flush()
    if replace:
        gone = sorted(n for n in existing if n not in keep)
        for i in range(0, len(gone), _CHUNK):
            chunk = gone[i:i + _CHUNK]
            session.execute(delete(CaseParty).where(CaseParty.case_number.in_(chunk)))
            session.execute(delete(CaseRecord).where(CaseRecord.number.in_(chunk)))
        result.deleted = gone
    s = result.summary()
    session.add(CaseImport(who=who, source=source[-255:], replace=replace, **s))
    session.flush()
    return result


def _set_parties(session: Session, rec: CaseRecord, parties: list[Party], id_hashes: list[str | None]) -> None:
    """Update the parties in place by position (no delete-then-insert clash on (case, position))."""
    current = list(rec.parties)
    for i, (party, id_hash) in enumerate(zip(parties, id_hashes, strict=True)):
        if i < len(current):
            current[i].name, current[i].role, current[i].id_hash = party.name, party.role, id_hash
        else:
            rec.parties.append(CaseParty(position=i, name=party.name, role=party.role, id_hash=id_hash))
    for extra in current[len(parties):]:
        rec.parties.remove(extra)
        session.delete(extra)


def load_demo_if_empty(session: Session, path: Path | None = None, *, tz: str = DEFAULT_TZ) -> int:
    """Load the bundled demo cases into a never-filled store; returns how many (not committed).

    A missing file or a store that was ever filled loads nothing; a broken file raises :class:`CaseImportError`.
    """
    path = DEMO_CASES_PATH if path is None else Path(path)
    if not path.is_file() or not never_filled(session):
        return 0
    rows = read_file(path, tz=tz)
    return len(apply_import(session, rows, "system", source=f"demo:{path.name}").created)


# ---------------------------------------------------------------- the adapter


class DemoCaseStore:
    """:class:`~court_cases.system.CaseSystem` over the hotline's own tables."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def get_case(self, case_number: str) -> CaseInfo | None:
        try:
            with self._sessions() as db:
                rec = find_record(db, case_number)
                return to_info(rec) if rec is not None else None
        except SQLAlchemyError as e:
            log.error("demo case store unavailable: get %s: %s", mask_number(case_number), type(e).__name__)
            raise CaseSystemUnavailable(f"database error ({type(e).__name__})") from None

    def verify(self, case_number: str, secret: str) -> bool:
        typed = normalise_secret(secret)
        if not typed:
            return False
        try:
            with self._sessions() as db:
                rec = find_record(db, case_number)
                if rec is None:
                    return False
                stored = [h for h in (rec.password_hash, *(p.id_hash for p in rec.parties)) if h]
                salt = rec.secret_salt
        except SQLAlchemyError as e:
            log.error("demo case store unavailable: verify %s: %s", mask_number(case_number), type(e).__name__)
            raise CaseSystemUnavailable(f"database error ({type(e).__name__})") from None
        return bool(stored) and matches(typed, salt, stored)

    def close(self) -> None:
        pass
