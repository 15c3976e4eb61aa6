"""Signing in from a browser, for pages whose reads are protected by ``API_READ_TOKEN``.

People paste the token once; it is kept in an HttpOnly (no script can read it), Secure,
SameSite=Strict cookie that the access rules honour for reads only (see ``auth``).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dataplatform.web.auth import COOKIE, SIGN_IN_PATH, AccessRules
from dataplatform.web.templating import templates

SESSION_SECONDS = 8 * 3600


def local_path(target: str | None) -> str:
    """``target`` if it is a path on this site, else ``/``: sign-in never redirects elsewhere."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def create_sign_in_router() -> APIRouter:
    router = APIRouter(tags=["sign-in"])

    def page(request: Request, next_path: str, error: str | None = None, status: int = 200) -> HTMLResponse:
        return templates.TemplateResponse(request, "sign_in.html", {
            "title": "Sign in", "next": local_path(next_path), "error": error,
            "signed_in": COOKIE in request.cookies}, status_code=status)

    @router.get(SIGN_IN_PATH, response_class=HTMLResponse, summary="Sign-in form for protected pages")
    def sign_in_form(request: Request, next: str = "/") -> HTMLResponse:  # noqa: A002 (the query's name)
        return page(request, next)

    @router.post(SIGN_IN_PATH, response_class=HTMLResponse, summary="Sign in with an API token (form post)")
    async def sign_in(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = form.get("token", [""])[0].strip()
        next_path = form.get("next", ["/"])[0]
        rules: AccessRules = request.app.state.access_rules
        if not token:
            return page(request, next_path, "Enter the token you were given (API_READ_TOKEN).", 400)
        if not rules.known(token):
            return page(request, next_path, "That token is not right. Check it and try again.", 403)
        response = RedirectResponse(local_path(next_path), status_code=303)
        response.set_cookie(COOKIE, token, max_age=SESSION_SECONDS, path="/", secure=True, httponly=True,
                            samesite="strict")
        return response

    @router.post("/sign-out", summary="Forget the sign-in cookie")
    def sign_out() -> Response:
        response = RedirectResponse(SIGN_IN_PATH, status_code=303)
        response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    return router
