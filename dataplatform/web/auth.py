"""Access control for the web service: tokens for reads and writes, and no cross-site writes.

The rules (``docs/security.md`` says why):

- a write (registering a schema, changing or deleting anything) needs ``API_WRITE_TOKEN``;
  when only ``API_READ_TOKEN`` is set, writes need that one: writes are open only when
  no token is configured at all;
- reads need ``API_READ_TOKEN`` (or the write token) when it is set;
- acknowledging a warning needs either token once any is set (the sign-in cookie will do);
- a state-changing request that a browser marks as coming from another origin
  (``Origin``, or ``Sec-Fetch-Site: cross-site``) is refused whatever it carries, unless
  the origin is listed in ``API_ALLOWED_ORIGINS``.

Clients send ``Authorization: Bearer <token>``, or HTTP Basic with the token as password
(what Confluent's ``basic.auth.user.info`` sends). Browsers sign in once at ``/sign-in``;
the token is then kept in an HttpOnly, SameSite=Strict cookie that is honoured for reads
only, so a signed-in browser can never be made to write. No credentials: 401 (a page
sends people to the sign-in form instead). Wrong credentials: 403.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from dataplatform.config import Settings

COOKIE = "dataplatform_token"
SIGN_IN_PATH = "/sign-in"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
OPEN_PATHS = (SIGN_IN_PATH, "/sign-out")


def is_write(method: str, path: str) -> bool:
    """Requests that change state. POSTs that only read (lookup, compatibility test) are reads."""
    if method in ("PUT", "DELETE", "PATCH"):
        return True
    return method == "POST" and path.startswith("/subjects/") and path.rstrip("/").endswith("/versions")


def is_acknowledgement(method: str, path: str) -> bool:
    """An operator's acknowledgement of a warning (the page's form or the API)."""
    return (method == "POST" and path.startswith(("/warnings/", "/api/warnings/"))
            and path.rstrip("/").endswith(("/acknowledge", "/acknowledgements")))


class AccessRules:
    """Which tokens open reads and writes, from the settings."""

    def __init__(self, settings: Settings) -> None:
        read = settings.api_read_token.get_secret_value() if settings.api_read_token else None
        write = settings.api_write_token.get_secret_value() if settings.api_write_token else None
        self.write_tokens = [t.encode() for t in ([write] if write else [read] if read else [])]
        self.read_tokens = [t.encode() for t in (read, write) if t] if read else []
        self.allowed_origins = set(settings.allowed_origin_list)

    def tokens_for(self, writing: bool) -> list[bytes]:
        return self.write_tokens if writing else self.read_tokens

    def accepts(self, token: str, writing: bool) -> bool:
        # Header values arrive as latin-1 text: compare bytes, so any token compares safely.
        presented = token.encode("utf-8", "surrogateescape")
        return any(hmac.compare_digest(presented, t) for t in self.tokens_for(writing))

    def known(self, token: str) -> bool:
        """Whether ``token`` is one of the configured tokens (what the sign-in form checks)."""
        return self.accepts(token, writing=False) or self.accepts(token, writing=True)


def header_token(request: Request) -> str | None:
    return token_in(request.headers.get("authorization", ""))


def token_in(authorization: str) -> str | None:
    """The token an ``Authorization`` header value carries: Bearer's, or Basic's password."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
    return None


def presented_token(request: Request) -> str | None:
    """The header's token; for safe methods only, the sign-in cookie's too."""
    token = header_token(request)
    if token is None and request.method in SAFE_METHODS:
        token = request.cookies.get(COOKIE)
    return token


def refusal(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="dataplatform"'} if status == 401 else {}
    return JSONResponse({"error_code": status * 100 + 1, "message": message}, status_code=status, headers=headers)


def credentials_refusal(rules: AccessRules, token: str | None, writing: bool) -> JSONResponse | None:
    """401 without a token, 403 with one that does not open this kind of request; None
    when it does, or when no token is needed (also the rule of the components' own
    ``/metrics`` ports: :mod:`dataplatform.web.metrics_port`)."""
    if not rules.tokens_for(writing):
        return None
    what = "this write operation" if writing else "reading"
    if token is None:
        return refusal(401, f"Authentication required for {what}: send 'Authorization: Bearer <token>' "
                            f"(or basic auth with the token as password).")
    if not rules.accepts(token, writing):
        which = ("API_WRITE_TOKEN (API_READ_TOKEN when no write token is set)" if writing
                 else "API_READ_TOKEN or API_WRITE_TOKEN")
        return refusal(403, f"The token presented is not allowed {what}: send {which}.")
    return None


def cross_site(request: Request, rules: AccessRules) -> str | None:
    """The foreign origin a browser says this request comes from, or None."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin is not None and origin.rstrip("/") != own and origin.rstrip("/") not in rules.allowed_origins:
        return origin
    if origin is None and request.headers.get("sec-fetch-site") == "cross-site":
        return "another site"
    return None


def wants_page(request: Request) -> bool:
    return request.method in SAFE_METHODS and "text/html" in request.headers.get("accept", "")


class TokenAuthMiddleware:
    """Applies :class:`AccessRules` to every HTTP request (a plain ASGI middleware: it reads
    headers only, so bodies and streamed responses pass through untouched)."""

    def __init__(self, app: ASGIApp, rules: AccessRules) -> None:
        self.app, self.rules = app, rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refused = self.check(Request(scope))
        if refused is None:
            return await self.app(scope, receive, send)
        await refused(scope, receive, send)

    def check(self, request: Request) -> Response | None:
        """The response that refuses ``request``, or None to let it through."""
        path = request.url.path
        if request.method not in SAFE_METHODS and (foreign := cross_site(request, self.rules)):
            return refusal(403, f"Cross-origin {request.method} from {foreign} refused: state-changing requests "
                                "must come from this service's own pages or a non-browser client "
                                "(add the origin to API_ALLOWED_ORIGINS to allow it).")
        if path.startswith("/static/") or path in OPEN_PATHS:
            return None
        if is_acknowledgement(request.method, path):
            return self.check_acknowledgement(request)
        writing = is_write(request.method, path)
        if not self.rules.tokens_for(writing):
            return None
        token = presented_token(request)
        if token is None and wants_page(request):
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"{SIGN_IN_PATH}?next={quote(here, safe='')}", status_code=303)
        return credentials_refusal(self.rules, token, writing)

    def check_acknowledgement(self, request: Request) -> Response | None:
        """Acknowledging changes no data, only notes who saw a warning: once any token is
        configured it needs one of them, from the header or the sign-in cookie (a browser's
        form; its origin was checked above, so another site cannot send it)."""
        if not (self.rules.read_tokens or self.rules.write_tokens):
            return None
        token = header_token(request) or request.cookies.get(COOKIE)
        if token is None:
            return refusal(401, "Sign in (or send 'Authorization: Bearer <token>') to acknowledge a warning.")
        if not self.rules.known(token):
            return refusal(403, "The token presented is not one of this service's tokens.")
        return None
