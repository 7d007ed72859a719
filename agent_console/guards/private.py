"""``/docs``, ``/redoc``, ``/openapi.json`` and ``/metrics`` answer only a logged-in user (any role) unless the
settings make them public (``hub.public_docs``, ``hub.public_metrics``). Prometheus may scrape ``/metrics`` with
the worker token as a bearer token instead of a login."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from http.cookies import SimpleCookie

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

DOC_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
METRICS_PATH = "/metrics"
MSG_LOGIN = "请先登录"


class PrivatePaths:
    def __init__(self, app: ASGIApp, *, public_docs: bool, public_metrics: bool, cookie_name: str,
                 worker_token: str, logged_in: Callable[[str], bool]):
        """``logged_in(token)``: whether a session cookie's token is a live login (reads the database)."""
        self.app = app
        self.public_docs, self.public_metrics = public_docs, public_metrics
        self.cookie_name, self.worker_token, self.logged_in = cookie_name, worker_token, logged_in

    def _guarded(self, path: str) -> bool:
        return (path in DOC_PATHS and not self.public_docs) or (path == METRICS_PATH and not self.public_metrics)

    async def _allowed(self, scope: Scope) -> bool:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if scope.get("path") == METRICS_PATH:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), self.worker_token.encode()):
                return True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is no login
            return False
        morsel = cookie.get(self.cookie_name)
        return morsel is not None and await run_in_threadpool(self.logged_in, morsel.value)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._guarded(scope.get("path", "")) or await self._allowed(scope):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": MSG_LOGIN}, ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
