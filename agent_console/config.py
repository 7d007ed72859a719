"""What the hub needs to run, built by the composition root (``hotline``) from its settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from court_cases.settings import CaseSettings
from knowledge_base.settings import CourtInfo, MatcherSettings
from work_orders.calendar import WorkingHours
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
    worker_lost_after_s: float = 120.0
    timezone: str = "Asia/Shanghai"
    cases: CaseSettings = field(default_factory=CaseSettings)
    work_orders: WorkOrderSettings = field(default_factory=WorkOrderSettings)
    #: HOTLINE_HOME: work-order attachments go under ``attachments/`` (None: a temporary directory)
    home: Path | None = None
    #: office hours (``ivr.working_hours``) on the work orders' calendar: automatic callbacks only then
    #: (None: 08:30 to ``work_orders.office_close`` on working days)
    working_hours: WorkingHours | None = None
    #: call slots of one IVR worker (``sip.max_calls_per_worker``), for choosing a worker for a callback
    worker_max_calls: int = 4
    #: origins besides the hub's own whose pages may send state-changing requests with the session cookie
    allowed_origins: tuple[str, ...] = ()
    #: largest request body in general; the KB import, attachments and worker event batches have their own
    max_body_bytes: int = 1 << 20
    #: /docs and /metrics without a login (else: a login, or the worker token for /metrics)
    public_docs: bool = False
    public_metrics: bool = False
    #: public order tracking (/track, /api/track) per address and minute
    track_per_minute: int = 30
    #: the workers' event spools (``<home>/spool``): dead-letter files there are shown on the wallboard
    spool_dir: Path | None = None
    #: recordings/ and attachments/ (``files_dir``, shared by the hosts when several; None: ``home``)
    files_dir: Path | None = None
    #: Redis shared by several hubs (``redis.url``; None: this hub's state in its memory) and its key prefix
    redis_url: str | None = None
    redis_prefix: str = "hotline:"
    #: how long the deciding hub's lease outlives it (a dead hub's successor decides after this)
    redis_lease_s: float = 5.0
