"""The console hub's FastAPI application.

``create_app(config, engine)`` is called by the composition root (``hotline.hub_main``), which
owns settings and migrations; this package never imports ``hotline``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from agent_console.auth.router import router as auth_router
from agent_console.auth.users import session_user
from agent_console.calls.internal import router as internal_router
from agent_console.calls.records import count_open_calls
from agent_console.calls.router import router as calls_router
from agent_console.cases.router import get_desk
from agent_console.cases.router import internal_router as cases_internal_router
from agent_console.cases.router import router as cases_router
from agent_console.config import HubConfig
from agent_console.dashboard.router import router as dashboard_router
from agent_console.guards.headers import SecurityHeaders
from agent_console.guards.limits import MULTIPART_SLACK, BodyLimit
from agent_console.guards.origin import OriginGuard
from agent_console.guards.private import PrivatePaths
from agent_console.health import router as health_router
from agent_console.kb.router import MAX_UPLOAD_BYTES as KB_MAX_UPLOAD_BYTES
from agent_console.kb.router import router as kb_router
from agent_console.kb_match import internal_router as kb_internal_router
from agent_console.kb_match import router as kb_match_router
from agent_console.metrics import HubMetrics, MetricsMiddleware
from agent_console.models import User
from agent_console.ops.cluster import ClusteredOps
from agent_console.ops.hub import OpsHub
from agent_console.ops.live import LiveCalls
from agent_console.ops.persister import Persister
from agent_console.ops.shared_log import RedisEventLog
from agent_console.ops.wallboard import router as wallboard_router
from agent_console.ops.workers import ClusterWorkers, WorkerRegistry
from agent_console.ops.ws import ensure_ticker
from agent_console.ops.ws import router as ops_ws_router
from agent_console.pages import router as pages_router
from agent_console.pii import MaskingFilter
from agent_console.redis_client import connect_redis
from agent_console.work_orders import callbacks as work_order_callbacks
from agent_console.work_orders import errors as work_order_errors
from agent_console.work_orders.hub_orders import HubFiling
from agent_console.work_orders.intake import pages as intake_pages
from agent_console.work_orders.intake import router as intake_router
from agent_console.work_orders.pages import router as work_order_pages
from agent_console.work_orders.router import router as work_orders_router
from agent_console.work_orders.service import call_has_order
from knowledge_base.live import LiveMatcher
from work_orders import scheduler as work_order_scheduler
from work_orders.calendar import WorkCalendar
from work_orders.store import WorkOrderContext

#: paths reachable without a login (``/internal/*`` takes the worker token instead)
#: (``/metrics`` and the API docs need a login too unless ``hub.public_metrics`` / ``hub.public_docs``: PRIVATE_PATHS)
PUBLIC_PATHS = frozenset({"/healthz", "/login", "/api/auth/login",
                          "/submit", "/api/submit", "/track", "/track/{number}", "/api/track/{number}"})  # 网上诉求
PRIVATE_PATHS = frozenset({"/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
#: pages that redirect to /login instead of answering 401
LOGIN_REDIRECT_PATHS = frozenset({"/", "/kb", "/wallboard", "/orders", "/inbox", "/dashboard"})
#: websockets: a login cookie (operators) or the worker token (workers) in the handshake
WEBSOCKET_PATHS = frozenset({"/ws/operator", "/internal/worker/ws"})
log = logging.getLogger(__name__)


def _mask_logs() -> None:
    """Personal data never reaches the hub's log lines (every handler of the root logger masks)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    _mask_logs()
    ensure_ticker(app)
    app.state.work_orders_scheduler = asyncio.get_running_loop().create_task(
        work_order_scheduler.run_forever(app.state.sessionmaker, app.state.work_orders))
    work_order_callbacks.start(app)
    try:
        yield
    finally:
        for name in ("ops_ticker", "work_orders_scheduler", "callbacks_task"):
            task = getattr(app.state, name, None)
            if task is not None:
                task.cancel()
        app.state.ops.close()


def _event_log(app: FastAPI, config: HubConfig) -> RedisEventLog | None:
    """The log browsers follow: shared through Redis with the other hubs when ``redis.url`` is set (RedisUnavailable
    names the key when it does not answer; the client is ``app.state.redis`` for the shared rate limits too), else
    this hub's own (None)."""
    app.state.redis, app.state.redis_prefix = None, config.redis_prefix
    if not config.redis_url:
        return None
    app.state.redis = connect_redis(config.redis_url)
    return RedisEventLog(app.state.redis, prefix=config.redis_prefix)


def create_app(config: HubConfig, engine: Engine) -> FastAPI:
    app = FastAPI(title="12368 诉讼服务热线 — 控制台", version=config.version,
                  description="Console hub of the 12368 hotline: auth, call records, worker events.",
                  lifespan=_lifespan)
    app.state.config = config
    app.state.engine = engine
    app.state.sessionmaker = sessionmaker(engine, expire_on_commit=False)
    app.state.ingest_lock = threading.Lock()

    def open_calls() -> float:
        try:
            with app.state.sessionmaker() as db:
                return float(count_open_calls(db))
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database did
            return float("nan")

    app.state.metrics = HubMetrics(open_calls)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(PrivatePaths, public_docs=config.public_docs, public_metrics=config.public_metrics,
                       cookie_name=config.cookie_name, worker_token=config.worker_token,
                       logged_in=lambda token: _logged_in(app, token))
    # the last added runs first: sizes, then a cross-site request is refused before anything reads a body
    app.add_middleware(OriginGuard, cookie_name=config.cookie_name, allowed_origins=config.allowed_origins)
    app.add_middleware(BodyLimit, default_bytes=config.max_body_bytes, routes=body_limits(config))
    app.add_middleware(SecurityHeaders, hsts=config.cookie_secure)
    app.state.kb_matcher = LiveMatcher(app.state.sessionmaker, config.matcher, config.court)
    app.state.work_orders = work_order_context(app, config)
    # the subscribers of the hub's stored events are made first, on the parts of the hub they read
    events_log = _event_log(app, config)
    shared = app.state.redis is not None  # several hubs share the live state (agent_console.ops.cluster)
    workers = ClusterWorkers("") if shared else WorkerRegistry()
    live, persist = LiveCalls(), Persister(app.state.sessionmaker)
    filing = HubFiling(app.state.work_orders, app.state.sessionmaker, category_of=live.category_of,
                       submit=persist.submit)
    app.state.callbacks = work_order_callbacks.CallbackDispatcher(
        app.state.sessionmaker, app.state.work_orders, workers, live.worker_calls, hours=config.working_hours,
        worker_max_calls=config.worker_max_calls)
    hub = OpsHub(app.state.sessionmaker, app.state.kb_matcher, subscribers=(filing, app.state.callbacks),
                 live=live, workers=workers, persist=persist, offer_timeout_s=config.offer_timeout_s,
                 bridge_ring_timeout_s=config.bridge_ring_timeout_s, worker_lost_after_s=config.worker_lost_after_s,
                 order_check=lambda call_id: _call_has_order(app, call_id), log=events_log)
    try:
        if not shared:  # shared: the hub that takes the lease rebuilds
            hub.rebuild()
        filing.recheck()
        if hub.calls:
            log.info("ops: %d open calls rebuilt from the database", len(hub.calls))
    except Exception:  # noqa: BLE001 - e.g. a database not migrated yet: the console starts empty
        log.exception("ops: could not rebuild the live state from the database")
    app.state.ops = (ClusteredOps(hub, app.state.redis, load_user=lambda user_id: _load_user(app, user_id),
                                  prefix=config.redis_prefix, lease_s=config.redis_lease_s) if shared else hub)
    for router in (health_router, auth_router, calls_router, internal_router, kb_router, kb_match_router,
                   kb_internal_router, work_orders_router, intake_router, wallboard_router, dashboard_router,
                   ops_ws_router, pages_router, work_order_pages, intake_pages):
        app.include_router(router)
    app.include_router(cases_internal_router)
    app.include_router(cases_router)
    work_order_errors.install(app)
    return app


def body_limits(config: HubConfig) -> list[tuple[str, int]]:
    """The routes that take more than ``max_body_bytes``: file uploads and the workers' event batches."""
    attachment = int(config.work_orders.attachment_max_mb * 2**20)
    return [(r"/api/kb/import", KB_MAX_UPLOAD_BYTES + MULTIPART_SLACK),
            (r"/api/work_orders/\d+/attachments", attachment + MULTIPART_SLACK),
            (r"/internal/.*", max(config.max_body_bytes, 16 * 2**20))]


def _load_user(app: FastAPI, user_id: int) -> User | None:
    """An active console user, detached from its session (the deciding hub of several, for a browser elsewhere)."""
    with app.state.sessionmaker() as db:
        user = db.get(User, user_id)
        if user is None or not user.active:
            return None
        db.expunge(user)
        return user


def _call_has_order(app: FastAPI, call_id: str) -> bool:
    with app.state.sessionmaker() as db:
        return call_has_order(db, call_id)


def _logged_in(app: FastAPI, token: str) -> bool:
    with app.state.sessionmaker() as db:
        return session_user(db, token) is not None


def work_order_context(app: FastAPI, config: HubConfig) -> WorkOrderContext:
    """The work orders' calendar (official schedule and the holiday file, as the IVR's working hours), settings,
    files and the case system (to send a message about a case to its judge's team)."""
    wo = config.work_orders
    calendar = WorkCalendar.from_file(wo.holiday_file, tz=config.timezone, day_end=wo.office_close)
    files = config.files_dir or config.home or Path(tempfile.mkdtemp(prefix="hotline-hub-"))
    ctx = WorkOrderContext(calendar, wo, attachments_dir=files / "attachments", recordings_dir=files / "recordings")

    def case_lookup(number: str) -> Any:
        return get_desk(SimpleNamespace(app=app)).system.get_case(number)  # get_desk reads request.app only

    ctx.case_lookup = case_lookup
    return ctx
