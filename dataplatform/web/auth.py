"""Access control for the web API: a token for writes, optionally one for reads.

Clients send ``Authorization: Bearer <token>``, or HTTP Basic with the token as password
(what Confluent's ``basic.auth.user.info`` sends), so standard serializers can register
schemas against a protected registry. No credentials: 401. Wrong credentials: 403.
"""

from __future__ import annotations

import base64
import hmac

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.middleware.base import BaseHTTPMiddleware

from dataplatform.config import Settings

#: Requests that change state. POSTs that only read (lookup, compatibility test) are reads.
def is_write(method: str, path: str) -> bool:
    if method in ("PUT", "DELETE", "PATCH"):
        return True
    return method == "POST" and path.startswith("/subjects/") and path.rstrip("/").endswith("/versions")


def presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return None
    return None


def _refuse(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="dataplatform"'} if status == 401 else {}
    return JSONResponse({"error_code": status * 100 + 1, "message": message}, status_code=status, headers=headers)


class TokenAuthMiddleware(BaseHTTPMiddleware):
    def __init__(self, app, settings: Settings) -> None:
        super().__init__(app)
        self.write = settings.api_write_token.get_secret_value() if settings.api_write_token else None
        self.read = settings.api_read_token.get_secret_value() if settings.api_read_token else None

    async def dispatch(self, request: Request, call_next):
        path = request.url.path
        if path.startswith("/static/"):
            return await call_next(request)
        writing = is_write(request.method, path)
        accepted = [t for t in ((self.write,) if writing else (self.read, self.write)) if t]
        if writing and self.write is None or not writing and self.read is None:
            return await call_next(request)
        token = presented_token(request)
        what = "this write operation" if writing else "reading"
        if token is None:
            return _refuse(401, f"Authentication required for {what}: send 'Authorization: Bearer <token>' "
                                f"(or basic auth with the token as password).")
        if not any(hmac.compare_digest(token, t) for t in accepted):
            return _refuse(403, f"The token presented is not allowed {what}: check API_WRITE_TOKEN"
                                f"{'' if writing else '/API_READ_TOKEN'}.")
        return await call_next(request)
