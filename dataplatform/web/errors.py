"""Every failure answered in one shape, ``{"error_code": ..., "message": ...}`` (Confluent's).

Confluent's clients read that shape from the registry; using it for every route means a
script needs one error parser, and an unknown path under the registry answers as
Confluent's does (``{"error_code": 404, "message": "HTTP 404 Not Found"}``). Messages never
repeat what was sent (a rejected body can be large or hold secrets), and a value a message
names is cut to 500 characters (:func:`shown`). Input no route can use (nested too deeply,
not UTF-8, out of range) is a 400 whichever route it reached. An unexpected
exception is logged and answered 500 here, inside the server, so uvicorn keeps the
keep-alive connection instead of resetting it.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from dataplatform.registry.api import validation_message

log = logging.getLogger(__name__)


def error_json(status: int, message: str, error_code: int | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error_code": error_code or status, "message": message}, status_code=status, headers=headers)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    phrase = HTTPStatus(exc.status_code).phrase if exc.status_code in HTTPStatus._value2member_map_ else ""
    message = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else f"HTTP {exc.status_code} {phrase}"
    return error_json(exc.status_code, message, headers=getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_json(422, validation_message(exc))


#: Input no route can use, whichever route it reached: answered 400 with what was wrong,
#: never 500. (SQLSTATE class 22, a data exception: a NUL character, a number out of range.)
BAD_INPUT = {
    RecursionError: "The request nests too deeply (JSON or a schema nested thousands of levels): flatten it.",
    UnicodeError: "The request holds text that is not valid UTF-8 (invalid bytes or a lone surrogate such as "
                  "\\ud800): send UTF-8.",
    OverflowError: "A number or date in the request is out of range: use a smaller one.",
    DataError: "A value in the request cannot be stored or compared (e.g. a NUL character or a number out of "
               "range): remove it.",
}


async def _bad_input(request: Request, exc: Exception) -> JSONResponse:
    log.info("%s %s: bad input: %s", request.method, request.url.path, type(exc).__name__)
    return error_json(400, next(m for kind, m in BAD_INPUT.items() if isinstance(exc, kind)))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for kind in BAD_INPUT:
        app.add_exception_handler(kind, _bad_input)


class CatchErrorsMiddleware:
    """Answer an unexpected exception with a JSON 500 (logged with its traceback)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if started:
                raise
            body = json.dumps({"error_code": 50001, "message": "Internal server error; the server log says why."})
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body.encode()})
