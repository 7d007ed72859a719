"""Run the console hub: migrate the database, then serve the app with uvicorn (one process)."""

from __future__ import annotations

import uvicorn

from agent_console.app import create_app
from agent_console.config import HubConfig
from hotline.db import make_engine, upgrade_engine
from hotline.settings import Settings


def hub_config(settings: Settings) -> HubConfig:
    hub = settings.hub
    return HubConfig(secret_key=settings.secret("secret_key"), worker_token=settings.secret("worker_token"),
                     cookie_secure=hub.cookie_secure, session_hours=hub.session_hours)


def build_server(settings: Settings) -> uvicorn.Server:
    """A migrated database and a uvicorn server for the hub, not yet started."""
    engine = make_engine(settings.db_url)
    upgrade_engine(engine)
    app = create_app(hub_config(settings), engine)
    # log_config=None: logging is configured by the composition root (hotline.logs), not by uvicorn
    config = uvicorn.Config(app, host=settings.hub.host, port=settings.hub.port, log_level=settings.log.level,
                            access_log=settings.log.level == "debug", log_config=None)
    return uvicorn.Server(config)


def run_hub(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn's handlers)."""
    server = build_server(settings)
    try:
        server.run()
    finally:
        server.config.app.state.engine.dispose()  # the app built by build_server
