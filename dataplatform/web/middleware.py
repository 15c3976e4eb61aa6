"""Protections every response gets: security headers and a limit on request bodies.

Both are small ASGI middlewares (Starlette has neither built in): they wrap ``send`` and
``receive`` rather than buffering responses, so the warnings page's server-sent event
stream passes through untouched.
"""

from __future__ import annotations

import json
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCS_PATHS = ("/docs",)
PAGE_POLICY = ("default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
               "form-action 'self'; frame-ancestors 'none'")
# The documentation page is an inline script that starts Swagger UI, whose files are served
# from this origin (fastapi-offline): nothing is loaded from elsewhere.
DOCS_POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
               "frame-ancestors 'none'")


class SecurityHeadersMiddleware:
    """``Content-Security-Policy`` (a fresh script nonce per request, exposed to templates as
    ``request.state.csp_nonce``), ``X-Content-Type-Options``, ``X-Frame-Options`` and
    ``Referrer-Policy`` on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        docs = scope["path"].startswith(DOCS_PATHS)
        policy = DOCS_POLICY if docs else PAGE_POLICY.format(nonce=nonce)
        extra = [(b"content-security-policy", policy.encode()), (b"x-content-type-options", b"nosniff"),
                 (b"x-frame-options", b"DENY"), (b"referrer-policy", b"same-origin")]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in extra if h[0] not in names]
            await send(message)

        await self.app(scope, receive, with_headers)


class BodyTooLarge(Exception):
    pass


DISCARD_AT_MOST_TIMES = 16   # an over-long chunked body is read and dropped up to 16x the limit


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, by ``Content-Length`` before
    reading anything, or while reading a body sent without one (chunked)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._refuse(send)
        seen = 0
        started = more = False

        async def counting_receive() -> Message:
            nonlocal seen, more
            message = await receive()
            more = message["type"] == "http.request" and message.get("more_body", False)
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            if more:
                await self._discard_rest(receive)
            await self._refuse(send)

    async def _discard_rest(self, receive: Receive) -> None:
        """Read (and drop) what the client is still sending, up to a bound, so that it gets
        to read the 413 instead of a connection reset mid-upload."""
        left = DISCARD_AT_MOST_TIMES * self.max_bytes
        while left > 0:
            message = await receive()
            left -= len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body"):
                return

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"error_code": 413, "message": f"Request body larger than {self.max_bytes} bytes "
                                                         "(API_MAX_BODY_BYTES); nothing was stored."}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
