"""What the hub needs to run, built by the composition root (``hotline``) from its settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from court_cases.settings import CaseSettings
from knowledge_base.settings import CourtInfo, MatcherSettings
from work_orders.settings import WorkOrderSettings


def _version() -> str:
    try:
        return metadata.version("hotline12368")
    except metadata.PackageNotFoundError:  # pragma: no cover - source tree without install
        return "0.0.0"


@dataclass(frozen=True)
class HubConfig:
    secret_key: str
    worker_token: str
    cookie_secure: bool = True
    session_hours: float = 12.0
    version: str = field(default_factory=_version)
    cookie_name: str = "hotline_session"
    matcher: MatcherSettings = field(default_factory=MatcherSettings)
    court: CourtInfo = field(default_factory=CourtInfo)
    offer_timeout_s: float = 15.0
    bridge_ring_timeout_s: float = 20.0
    timezone: str = "Asia/Shanghai"
    cases: CaseSettings = field(default_factory=CaseSettings)
    work_orders: WorkOrderSettings = field(default_factory=WorkOrderSettings)
    #: HOTLINE_HOME: work-order attachments go under ``attachments/`` (None: a temporary directory)
    home: Path | None = None
