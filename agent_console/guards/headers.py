"""Security headers on every hub response: no MIME sniffing, no framing (clickjacking), no full URLs to other
sites, and a Content-Security-Policy the console pages work under (their scripts and styles are inline, the
pages talk to the hub only: HTTP and its websocket). ``/docs`` and ``/redoc`` load Swagger/ReDoc from their CDN
and keep only the framing and sniffing headers."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self' ws: wss:; font-src 'self' data:; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
ALWAYS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
          (b"referrer-policy", b"same-origin")]
NO_CSP_PREFIXES = ("/docs", "/redoc")


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, hsts: bool = False):
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(ALWAYS)
        if not scope.get("path", "").startswith(NO_CSP_PREFIXES):
            extra.append((b"content-security-policy", CSP.encode()))
        if self.hsts:
            extra.append((b"strict-transport-security", b"max-age=31536000"))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in extra if h[0] not in present]
            await send(message)

        await self.app(scope, receive, with_headers)
