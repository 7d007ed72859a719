"""CSRF: a state-changing request that carries the session cookie must come from the hub's own pages.

The session cookie is SameSite=Lax, which still lets another page on the same *site* (another port or
subdomain of the court's host) post forms and fetches with it. So every POST/PUT/PATCH/DELETE with the cookie,
and every websocket handshake with it (cross-site websocket hijacking), must name an allowed origin:

- ``Origin`` (or, when a browser sent none, ``Referer``) equal to the hub's own origin (its ``Host``) or one of
  ``hub.allowed_origins``; ``Origin: null`` is refused;
- a request with neither header is a non-browser client (CLI, scripts, the tests' HTTP clients) and passes:
  browsers send ``Origin`` with every cross-origin POST, fetch and websocket;
- a body must say what it is: JSON only as ``application/json``, forms as urlencoded or multipart; anything else
  (``text/plain``, the type a cross-site form can send without a preflight) gets 415.

``/internal/*`` (the workers' bearer token, no cookie) is exempt. Refusals are Chinese JSON errors and change
nothing: the route never runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BODY_TYPES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")
EXEMPT_PREFIXES = ("/internal/",)
MSG_CROSS_SITE = "请求来源不被允许（跨站请求已拒绝）"
MSG_BODY_TYPE = "请求内容类型不受支持（JSON 请使用 application/json）"
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


def _netloc(scheme: str, netloc: str) -> str:
    host, _, port = netloc.lower().rpartition(":") if netloc.count(":") == 1 else (netloc.lower(), "", "")
    if not host:
        return netloc.lower()
    return host if port in ("", _DEFAULT_PORTS.get(scheme, "")) else f"{host}:{port}"


def origin_key(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url`` with the default port dropped (None when it is not a URL)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{_netloc(parts.scheme, parts.netloc)}"


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


class OriginGuard:
    def __init__(self, app: ASGIApp, *, cookie_name: str, allowed_origins: Iterable[str] = ()):
        self.app = app
        self.cookie_name = cookie_name
        self.allowed = {k for k in (origin_key(o) for o in allowed_origins) if k}

    def _has_cookie(self, headers: dict[str, str]) -> bool:
        return any(part.strip().startswith(self.cookie_name + "=") for part in headers.get("cookie", "").split(";"))

    def _same_origin(self, source: str, headers: dict[str, str]) -> bool:
        key = origin_key(source)
        if key is None:
            return False
        if key in self.allowed:
            return True
        host = headers.get("host", "")
        scheme = key.split("://", 1)[0]
        return bool(host) and key.split("://", 1)[1] == _netloc(scheme, host)

    def verdict(self, scope: Scope) -> tuple[int, str] | None:
        """(status, message) to refuse the request with, or None to let it through."""
        path: str = scope.get("path", "")
        if path.startswith(EXEMPT_PREFIXES):
            return None
        headers = _headers(scope)
        websocket = scope["type"] == "websocket"
        if not websocket and scope.get("method", "GET").upper() not in UNSAFE:
            return None
        if not websocket:
            has_body = headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers
            ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if has_body and not (ctype in BODY_TYPES or (ctype.startswith("application/") and ctype.endswith("+json"))):
                return 415, MSG_BODY_TYPE
        if not self._has_cookie(headers):
            return None
        source = headers.get("origin")
        if source is None:
            source = headers.get("referer")
            if source is None:
                return None  # not a browser
        if source.strip().lower() == "null" or not self._same_origin(source, headers):
            return 403, MSG_CROSS_SITE
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refused = self.verdict(scope)
        if refused is None:
            await self.app(scope, receive, send)
            return
        code, message = refused
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "cross-site"})
            return
        body = json.dumps({"detail": message}, ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": code,
                    "headers": [(b"content-type", b"application/json; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
