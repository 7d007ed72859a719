"""The configured case system: the demo store or the court's HTTP system, as ``[cases]`` says."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from court_cases.case import DEFAULT_TZ
from court_cases.demo import DemoCaseStore
from court_cases.http import HttpCaseSystem
from court_cases.settings import CaseSettings
from court_cases.system import CaseSystem


def open_case_system(settings: CaseSettings, sessions: sessionmaker[Session], *, tz: str = DEFAULT_TZ) -> CaseSystem:
    if settings.backend == "http":
        assert settings.url is not None  # the settings model requires it
        return HttpCaseSystem(settings.url, settings.token, timeout_s=settings.timeout_s, retries=settings.retries,
                              retry_backoff_s=settings.retry_backoff_s, tz=tz)
    return DemoCaseStore(sessions)
