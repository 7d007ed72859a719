"""Run the console hub: migrate the database, then serve the app with uvicorn (one process)."""

from __future__ import annotations

import sys
from pathlib import Path

import structlog
import uvicorn
from sqlalchemy import Engine

from agent_console.app import create_app
from agent_console.config import HubConfig
from court_cases.demo import load_demo_if_empty
from court_cases.io import DEMO_CASES_PATH, CaseImportError
from hotline.db import open_migrated, session_factory
from hotline.hub_tls import HubCertificate, ensure_certificate
from hotline.settings import Settings
from knowledge_base.embedding import check_model
from knowledge_base.io import DEFAULT_KB_PATH, KbImportError, load_default_if_empty
from knowledge_base.menu_intents import MenuIntentError, load_menu_intents
from work_orders.taxonomy import court_file

log = structlog.get_logger("hotline.hub")


def hub_config(settings: Settings) -> HubConfig:
    hub = settings.hub
    return HubConfig(secret_key=settings.secret("secret_key"), worker_token=settings.secret("worker_token"),
                     cookie_secure=hub.cookie_secure, session_hours=hub.session_hours,
                     matcher=settings.kb, court=settings.court, offer_timeout_s=hub.offer_timeout_s,
                     bridge_ring_timeout_s=hub.bridge_ring_timeout_s,
                     worker_lost_after_s=hub.worker_lost_after_s, timezone=hub.timezone,
                     cases=settings.cases,
                     work_orders=settings.work_orders.model_copy(update={"taxonomy_file": court_file(
                         settings.work_orders.taxonomy_file, settings.home)}), home=settings.home,
                     working_hours=settings.ivr.working_hours, worker_max_calls=settings.sip.max_calls_per_worker,
                     allowed_origins=tuple(hub.allowed_origins), max_body_bytes=hub.max_body_kb * 1024,
                     public_docs=hub.public_docs, public_metrics=hub.public_metrics,
                     track_per_minute=hub.track_per_minute, spool_dir=settings.path("spool"),
                     redis_url=settings.redis.url, redis_prefix=settings.redis.prefix,
                     redis_lease_s=settings.redis.lease_s, files_dir=settings.files())


def load_default_kb(engine: Engine, path: Path | None = None) -> int:
    """On first start (no KB entries or history yet), load the KB shipped with the package, if present.

    A broken default file is logged, not fatal: the hub still serves and admins can import a KB.
    """
    try:
        with session_factory(engine)() as db:
            loaded = load_default_if_empty(db, path)
            db.commit()
    except KbImportError as e:
        log.error("default knowledge base not loaded", path=str(path or DEFAULT_KB_PATH), error=str(e))
        return 0
    if loaded:
        log.info("default knowledge base loaded", entries=loaded)
    return loaded


def load_demo_cases(settings: Settings, engine: Engine, path: Path | None = None) -> int:
    """On first start of a demo store (no cases, no import ever), load the bundled demo cases — unless
    ``cases.load_demo`` is off or the court's HTTP system answers instead. A broken file is logged, not fatal."""
    if settings.cases.backend != "demo" or not settings.cases.load_demo:
        return 0
    try:
        with session_factory(engine)() as db:
            loaded = load_demo_if_empty(db, path, tz=settings.hub.timezone)
            db.commit()
    except CaseImportError as e:
        log.error("demo cases not loaded", path=str(path or DEMO_CASES_PATH), error=str(e))
        return 0
    if loaded:
        log.info("demo cases loaded", cases=loaded)
    return loaded


def build_server(settings: Settings) -> uvicorn.Server:
    """A migrated database and a uvicorn server for the hub, not yet started.

    With ``kb.semantic`` a missing or damaged embedding model stops here (:class:`EmbeddingModelError`
    names the file), and so does a database that cannot be opened (:class:`DatabaseUnavailable`), before
    anything is served."""
    if settings.kb.semantic:
        check_model()
    engine = open_migrated(settings.db_url)  # DatabaseUnavailable names database_url
    load_default_kb(engine)
    load_demo_cases(settings, engine)
    app = create_app(hub_config(settings), engine)
    # the model load and the first build take seconds: done in the background from here, and again after each
    # import or edit, so no caller's first match waits for them (a worker gives a match 3 s)
    try:  # the main menu's spoken options: its first speech match after start is warm too
        app.state.kb_matcher.remember_menu(load_menu_intents(settings.ivr.menu_file, "main"))
    except MenuIntentError as e:
        log.warning("kb matcher: main menu not warmed", error=str(e))
    app.state.kb_matcher.start_warming()
    tls: dict[str, str] = {}
    if settings.hub.tls:
        cert = ensure_certificate(settings.home, settings.hub.host, settings.hub.tls_cert, settings.hub.tls_key)
        announce_certificate(cert)
        tls = {"ssl_certfile": str(cert.cert), "ssl_keyfile": str(cert.key)}
    # log_config=None: logging is configured by the composition root (hotline.logs), not by uvicorn
    config = uvicorn.Config(app, host=settings.hub.host, port=settings.hub.port, log_level=settings.log.level,
                            access_log=settings.log.level == "debug", log_config=None, proxy_headers=True,
                            forwarded_allow_ips=settings.hub.trusted_proxies, **tls)
    return uvicorn.Server(config)


def announce_certificate(cert: HubCertificate) -> None:
    """The fingerprint on stderr and in the log: staff compare it with the browser's before trusting the hub."""
    what = "generated a self-signed certificate" if cert.generated else "certificate"
    print(f"hub HTTPS {what}: {cert.cert}\n  SHA-256 fingerprint {cert.fingerprint}", file=sys.stderr, flush=True)
    log.info("hub https", cert=str(cert.cert), sha256=cert.fingerprint, generated=cert.generated)


def run_hub(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn's handlers)."""
    server = build_server(settings)
    try:
        server.run()
    finally:
        server.config.app.state.kb_matcher.stop_warming()
        server.config.app.state.engine.dispose()  # the app built by build_server
