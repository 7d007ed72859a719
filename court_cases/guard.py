"""Verification by phone, rate-limited: failures counted per calling number and per case, locked for the day.

Every attempt is a ``case_verify_attempts`` row (never the secret). Failures count from the start of the
court's day, or from the last success of the same key when that is later (the case's own secret resets the
case's count; any success resets the caller's). When the failures of the caller or of the case — as
``lock_scope`` says — reach ``max_failures``, further attempts are refused (``locked``) until midnight in the
court's time zone. The counts live in the database, so a restarted hub keeps them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from court_cases.models import VerifyAttempt

Result = Literal["ok", "wrong", "locked", "unavailable"]
Scope = Literal["both", "caller", "case"]


@dataclass(frozen=True)
class GuardState:
    locked: bool
    tries_left: int
    caller_failures: int
    case_failures: int


class VerifyGuard:
    def __init__(self, max_failures: int = 3, scope: Scope = "both", tz: str = "Asia/Shanghai",
                 clock: Callable[[], datetime] | None = None) -> None:
        self.max_failures = max_failures
        self.scope = scope
        self.tz = ZoneInfo(tz)
        self.clock = clock or (lambda: datetime.now(UTC))
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def key_lock(self, case_number: str) -> threading.Lock:
        """One lock per case, held from the check to the record, so parallel calls cannot exceed the limit."""
        with self._locks_guard:
            if len(self._locks) > 10_000:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            return self._locks.setdefault(case_number, threading.Lock())

    def day_start(self, now: datetime) -> datetime:
        local = now.astimezone(self.tz)
        return datetime.combine(local.date(), time(0), tzinfo=self.tz).astimezone(UTC)

    def _failures(self, db: Session, where: ColumnElement[bool], since: datetime) -> int:
        """Failures today after the key's last success today (attempt ids give the order, not timestamps)."""
        today = [where, VerifyAttempt.at >= since]
        last_ok = db.scalar(select(func.max(VerifyAttempt.id)).where(*today, VerifyAttempt.result == "ok"))
        cond = [*today, VerifyAttempt.result == "wrong"]
        if last_ok is not None:
            cond.append(VerifyAttempt.id > last_ok)
        return int(db.scalar(select(func.count()).select_from(VerifyAttempt).where(*cond)) or 0)

    def state(self, db: Session, caller: str, case_number: str, now: datetime | None = None) -> GuardState:
        now = now or self.clock()
        since = self.day_start(now)
        by_caller = self._failures(db, VerifyAttempt.caller == caller, since) if self.scope != "case" else 0
        by_case = self._failures(db, VerifyAttempt.case_number == case_number, since) if self.scope != "caller" else 0
        left = max(0, self.max_failures - max(by_caller, by_case))
        return GuardState(locked=left == 0, tries_left=left, caller_failures=by_caller, case_failures=by_case)

    def record(self, db: Session, caller: str, case_number: str, result: Result, call_id: str | None = None,
               now: datetime | None = None) -> VerifyAttempt:
        row = VerifyAttempt(at=now or self.clock(), caller=caller[:64], case_number=case_number[:64], result=result,
                            call_id=call_id[:128] if call_id else None)
        db.add(row)
        db.flush()
        return row

    def attempts(self, db: Session, case_number: str, limit: int = 20) -> list[VerifyAttempt]:
        return list(db.scalars(select(VerifyAttempt).where(VerifyAttempt.case_number == case_number)
                               .order_by(VerifyAttempt.at.desc(), VerifyAttempt.id.desc()).limit(limit)))
