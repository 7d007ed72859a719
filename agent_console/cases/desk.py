"""The hub's case desk: lookups and identity checks for IVR workers, case views for staff.

One :class:`CaseDesk` per hub (built on first use from ``HubConfig.cases``). It asks the configured
:class:`~court_cases.system.CaseSystem`, counts verification attempts with
:class:`~court_cases.guard.VerifyGuard` (in the database, so a restart keeps them), and after a successful
check hands the worker a ticket — an HMAC over case number, caller and expiry, signed with a key derived from
the hub's secret — so the same call can read the case again (重听, menus 3 and 4) without a second check.
No secret is stored or logged; log lines carry masked numbers only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from court_cases.backend import open_case_system
from court_cases.case import CaseInfo
from court_cases.guard import VerifyGuard
from court_cases.numbers import CaseRef, normalise
from court_cases.privacy import mask_digits, mask_name, mask_number
from court_cases.settings import CaseSettings
from court_cases.spoken import (
    SAY_INVALID,
    SAY_LOCKED,
    SAY_NOT_FOUND,
    SAY_UNAVAILABLE,
    readback,
    status_parts,
    tries_left_sentence,
)
from court_cases.system import CaseSystem, CaseSystemUnavailable
from ivr.hub_api import CaseBrief, LookupReply, LookupRequest, VerifyReply, VerifyRequest

log = logging.getLogger(__name__)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Tickets:
    """Short-lived proofs that a call passed verification for a case."""

    def __init__(self, secret_key: str, minutes: float) -> None:
        self._key = hmac.new(secret_key.encode(), b"hotline12368/cases/ticket", hashlib.sha256).digest()
        self.seconds = minutes * 60

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:18]

    def issue(self, case_number: str, caller: str, now: float | None = None) -> str:
        expires = int((now if now is not None else time.time()) + self.seconds)
        payload = f"{case_number}\n{caller}\n{expires}".encode()
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def valid(self, ticket: str | None, case_number: str, caller: str, now: float | None = None) -> bool:
        if not ticket or "." not in ticket:
            return False
        try:
            body, sig = ticket.split(".", 1)
            payload = _unb64(body)
            ok = hmac.compare_digest(self._sign(payload), _unb64(sig))
            number, who, expires = payload.decode().split("\n")
        except (ValueError, UnicodeDecodeError):
            return False
        return (ok and number == case_number and who == caller
                and int(expires) >= (now if now is not None else time.time()))


class CaseDesk:
    def __init__(self, system: CaseSystem, sessions: sessionmaker[Session], settings: CaseSettings, *,
                 secret_key: str, tz: str = "Asia/Shanghai", clock: Callable[[], datetime] | None = None) -> None:
        self.system = system
        self.sessions = sessions
        self.settings = settings
        self.tz = tz
        self.clock = clock or (lambda: datetime.now(UTC))
        self.guard = VerifyGuard(settings.verify_max_failures, settings.lock_scope, tz, clock=self.clock)
        self.tickets = Tickets(secret_key, settings.verified_minutes)

    @classmethod
    def build(cls, settings: CaseSettings, sessions: sessionmaker[Session], *, secret_key: str,
              tz: str) -> CaseDesk:
        return cls(open_case_system(settings, sessions, tz=tz), sessions, settings, secret_key=secret_key, tz=tz)

    def close(self) -> None:
        self.system.close()

    def _brief(self, case: CaseInfo) -> CaseBrief:
        return CaseBrief(**case.brief())

    def _status(self, case: CaseInfo) -> list[str]:
        return status_parts(case, now=self.clock(), tz=self.tz)

    # ------------------------------------------------------------ IVR

    def lookup(self, req: LookupRequest) -> LookupReply:
        ref = normalise(req.number)
        if ref is None:
            return LookupReply(result="invalid", say=SAY_INVALID)
        base: dict[str, Any] = {"kind": ref.kind, "number": ref.value}
        try:
            case = self.system.get_case(ref.value)
        except CaseSystemUnavailable:
            return LookupReply(result="unavailable", say=SAY_UNAVAILABLE, **base)
        if case is None:
            return LookupReply(result="not_found", say=SAY_NOT_FOUND, **base)
        said = readback(case.case_number, ref.value if ref.is_lookup else None)
        if self.tickets.valid(req.ticket, case.case_number, req.caller):
            parts = self._status(case)
            return LookupReply(result="found", case_number=case.case_number, readback=said, verified=True,
                               status="".join(parts), status_parts=parts, case=self._brief(case), say="".join(parts),
                               **base)
        return LookupReply(result="found", case_number=case.case_number, readback=said, say=said, **base)

    def _canonical(self, ref: CaseRef) -> str | None:
        """The canonical number of a reference (a lookup number asks the case system)."""
        if not ref.is_lookup:
            return ref.value
        case = self.system.get_case(ref.value)
        return case.case_number if case is not None else None

    def verify(self, req: VerifyRequest) -> VerifyReply:
        ref = normalise(req.number)
        if ref is None:
            return VerifyReply(result="invalid", say=SAY_INVALID)
        try:
            number = self._canonical(ref)
        except CaseSystemUnavailable:
            return VerifyReply(result="unavailable", say=SAY_UNAVAILABLE)
        if number is None:  # an unknown lookup number: nothing to count against but the caller
            number = ref.value
        caller = req.caller.strip()
        with self.guard.key_lock(number):
            with self.sessions() as db:
                state = self.guard.state(db, caller, number)
                if state.locked:
                    self.guard.record(db, caller, number, "locked", req.call_id)
                    db.commit()
            if state.locked:
                log.warning("case verification refused (locked today): case %s caller %s", mask_number(number),
                            mask_digits(caller))
                return VerifyReply(result="locked", case_number=number, say=SAY_LOCKED)
            try:
                ok = self.system.verify(number, req.secret)
            except CaseSystemUnavailable:
                ok = None
            with self.sessions() as db:
                self.guard.record(db, caller, number, "unavailable" if ok is None else "ok" if ok else "wrong",
                                  req.call_id)
                db.commit()
        if ok is None:
            return VerifyReply(result="unavailable", case_number=number, tries_left=state.tries_left,
                               say=SAY_UNAVAILABLE)
        if not ok:
            left = state.tries_left - 1
            if left <= 0:
                log.warning("case verification locked for the day: case %s caller %s", mask_number(number),
                            mask_digits(caller))
                return VerifyReply(result="locked", case_number=number, say=SAY_LOCKED)
            return VerifyReply(result="wrong", case_number=number, tries_left=left, say=tries_left_sentence(left))
        ticket = self.tickets.issue(number, caller)
        try:
            case = self.system.get_case(number)
        except CaseSystemUnavailable:
            case = None
            say = SAY_UNAVAILABLE
        else:
            say = SAY_NOT_FOUND
        if case is None:
            return VerifyReply(result="ok", case_number=number, tries_left=self.settings.verify_max_failures,
                               ticket=ticket, say=say)
        parts = self._status(case)
        return VerifyReply(result="ok", case_number=number, tries_left=self.settings.verify_max_failures,
                           ticket=ticket, status="".join(parts), status_parts=parts, case=self._brief(case),
                           say="".join(parts))

    # ------------------------------------------------------------ staff

    def staff_view(self, number: str, clear: bool) -> dict[str, Any] | None:
        """The case for the console; ``clear`` False masks party names and callers. None: not found.

        Raises :class:`ValueError` for something that is not a case number and
        :class:`CaseSystemUnavailable` when the case system cannot answer.
        """
        ref = normalise(number)
        if ref is None:
            raise ValueError(number)
        case = self.system.get_case(ref.value)
        if case is None:
            return None
        doc = case.model_dump(mode="json")
        doc["stage_name"] = case.stage.label
        doc["status"] = "".join(self._status(case))
        if not clear:
            doc["parties"] = [{"name": mask_name(p.name), "role": p.role} for p in case.parties]
        with self.sessions() as db:
            state = self.guard.state(db, "", case.case_number)
            recent = self.guard.attempts(db, case.case_number)
        doc["verification"] = {
            "locked_today": state.case_failures >= self.settings.verify_max_failures,
            "failures_today": state.case_failures,
            "recent": [{"at": a.at.isoformat(), "result": a.result,
                        "caller": a.caller if clear else mask_digits(a.caller), "call_id": a.call_id}
                       for a in recent],
        }
        return doc
