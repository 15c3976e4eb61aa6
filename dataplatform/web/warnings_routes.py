"""Live warnings for operations: the page, its server-sent event stream, and JSON."""

from __future__ import annotations

import asyncio
import json
import queue

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sse_starlette.sse import EventSourceResponse

from dataplatform.warnings.store import WarningStore
from dataplatform.web.templating import templates


def create_warnings_router(store: WarningStore) -> APIRouter:
    router = APIRouter()

    @router.get("/warnings", response_class=HTMLResponse, tags=["warnings"], summary="Live warnings page")
    def warnings_page(request: Request):
        return templates.TemplateResponse(request, "warnings.html", {"title": "Live warnings", "warnings": store.current()})

    @router.get("/warnings/history", response_class=HTMLResponse, tags=["warnings"], summary="Warning history page")
    def history_page(request: Request):
        return templates.TemplateResponse(request, "history.html", {"title": "Warning history", "history": store.history()})

    @router.get("/api/warnings", tags=["warnings"], summary="Current warnings (not cleared), most severe first")
    def current() -> list[dict]:
        return store.current()

    @router.get("/api/warnings/history", tags=["warnings"], summary="Every transition, newest first")
    def history(limit: int = Query(200, ge=1, le=10_000, description="How many transitions, newest first")) -> list[dict]:
        return store.history(limit)

    @router.get("/warnings/stream", tags=["warnings"], summary="Server-sent events: one 'warning' event per transition")
    async def stream(request: Request):
        follower = request.app.state.warning_follower
        q: queue.Queue | None = follower.subscribe() if follower else None

        async def events():
            try:
                # Everything current first, so a page never misses what happened before it connected.
                for w in store.current():
                    yield {"event": "warning", "data": json.dumps(w)}
                while not await request.is_disconnected():
                    try:
                        item = q.get_nowait() if q else None
                    except queue.Empty:
                        item = None
                    if item is None:
                        await asyncio.sleep(0.2)
                        continue
                    yield {"event": "warning", "data": json.dumps(item)}
            finally:
                if q is not None:
                    follower.unsubscribe(q)

        return EventSourceResponse(events(), ping=15)

    return router
