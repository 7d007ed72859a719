"""Request-size limits, applied before anything parses a body (JSON, forms, multipart spool files).

``Content-Length`` over the limit is refused at once (413, nothing read); a chunked body is counted as it is
read and cut off with 413 at the limit. The default is small (``hub.max_body_kb``, 1 MB); the routes that take
files have their own: the KB import, work-order attachments, and the workers' event batches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MSG_TOO_LARGE = "请求内容过大（上限 {limit}）"
MULTIPART_SLACK = 64 * 1024  # multipart boundaries and headers around the file itself


class BodyTooLarge(Exception):
    pass


def _human(n: int) -> str:
    return f"{n / 2**20:g} MB" if n >= 2**20 else f"{n // 1024} KB"


class BodyLimit:
    def __init__(self, app: ASGIApp, *, default_bytes: int, routes: Iterable[tuple[str, int]] = ()):
        """``routes``: (regular expression matched against the whole path, limit in bytes), first match wins."""
        self.app = app
        self.default = default_bytes
        self.routes = [(re.compile(p), n) for p, n in routes]

    def limit_for(self, path: str) -> int:
        for pattern, n in self.routes:
            if pattern.fullmatch(path):
                return n
        return self.default

    async def _refuse(self, send: Send, limit: int) -> None:
        body = json.dumps({"detail": MSG_TOO_LARGE.format(limit=_human(limit)), "code": "too_large"},
                          ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        declared = next((v for k, v in scope.get("headers", []) if k.lower() == b"content-length"), None)
        if declared is not None:
            try:
                if int(declared) > limit:
                    await self._refuse(send, limit)
                    return
            except ValueError:
                await self._refuse(send, limit)
                return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:
                await self._refuse(send, limit)
