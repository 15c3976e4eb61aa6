"""The warnings JSON API and the live stream the pages listen to.

The stream (server-sent events) carries three kinds of event: ``warning`` (a transition,
with its display fields and acknowledgement), ``acknowledgement`` (someone acknowledged a
warning, on this or another replica: read from the database) and ``status`` (the
processor's heartbeat status, every few seconds, so a page notices a silent processor
even when no warning changes).
"""

from __future__ import annotations

import asyncio
import json
import queue
import time

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sse_starlette.sse import EventSourceResponse

from dataplatform.config import shown
from dataplatform.warnings.acknowledgements import AcknowledgementError
from dataplatform.web.warnings_routes import HISTORY_PAGE_SIZE, FilterError, history_filter
from dataplatform.web.warnings_view import WarningsView

STATUS_EVERY_S = 2.0


class AcknowledgementIn(BaseModel):
    by: str = Field(description="Who is acknowledging: a name or team.", examples=["Sam Patel (North West housing)"])
    note: str = Field("", description="What is being done about it.", examples=["Calling the council's housing lead"])


def create_warnings_api(view: WarningsView) -> APIRouter:
    router = APIRouter(tags=["warnings"])

    @router.get("/api/warnings", summary="Current warnings (not cleared): most severe, then longest raised, first",
                response_model=list[dict])
    async def current() -> Response:
        return Response(view.current_json(), media_type="application/json")   # kept encoded in memory

    @router.get("/api/warnings/history", summary="Transitions, newest first, filtered and paged")
    def history(area: str = "", severity: str = "", since: str = "", until: str = "",
                page: int = Query(1, ge=1, le=10**9, description="Page number, from 1"),
                limit: int = Query(HISTORY_PAGE_SIZE, ge=1, le=1000, description="Transitions per page")):
        try:
            where = history_filter(area, severity, since, until, view.zone)
        except FilterError as exc:
            return JSONResponse({"error_code": 40001, "message": str(exc)}, status_code=400)
        result = view.store.history_page(where, page, limit)
        return {"total": result.total, "page": result.page, "pages": result.pages, "page_size": result.page_size,
                "transitions": result.rows}

    @router.get("/api/processor", summary="Each derived product's processor heartbeat: ok, late or unknown")
    def processor() -> dict:
        return view.processor()

    # Warning ids may hold '/' (a composite group key: court/date/language), so the id is a path;
    # the longer routes come first.
    @router.get("/api/warnings/{warning_id:path}/acknowledgements", summary="Acknowledgements of a warning, newest first")
    def acknowledgements(warning_id: str) -> list[dict]:
        return view.acks.for_warning(warning_id)

    @router.post("/api/warnings/{warning_id:path}/acknowledgements", status_code=201,
                 summary="Acknowledge a warning (who, a note); the warning itself never changes")
    def acknowledge(warning_id: str, body: AcknowledgementIn):
        try:
            return view.acks.add(warning_id, body.by, body.note)
        except AcknowledgementError as exc:
            return JSONResponse({"error_code": 42201, "message": str(exc)}, status_code=422)
        except LookupError as exc:
            return JSONResponse({"error_code": 40401, "message": str(exc)}, status_code=404)

    @router.get("/api/warnings/{warning_id:path}", summary="One warning: latest transition and acknowledgements")
    def one(warning_id: str) -> dict:
        latest = view.store.latest(warning_id)
        if latest is None:
            raise HTTPException(404, f"no warning {shown(warning_id)}: see /api/warnings for current warning ids")
        return {**latest, "acknowledgements": view.acks.for_warning(warning_id)}

    @router.get("/warnings/stream", summary="Server-sent events: 'warning', 'acknowledgement' and 'status'")
    async def stream(request: Request):
        follower = request.app.state.warning_follower
        q: queue.Queue | None = follower.subscribe() if follower else None

        def event(kind: str, data: dict) -> dict:
            return {"event": kind, "data": json.dumps(data)}

        async def events():
            try:
                last_ack = view.acks.last_id()
                yield event("status", view.processor())
                # Everything current first, so a page never misses what happened before it connected.
                for w in view.current():
                    yield event("warning", w)
                next_status = time.monotonic() + STATUS_EVERY_S
                while not await request.is_disconnected():
                    try:
                        item = q.get_nowait() if q else None
                    except queue.Empty:
                        item = None
                    if item is not None:
                        ack = view.acks.latest_by_warning([item["warning_id"]]).get(item["warning_id"])
                        yield event("warning", view.decorate(item, ack, with_spark=True))
                        continue
                    if time.monotonic() >= next_status:
                        for ack in view.acks.since(last_ack):
                            last_ack = ack["id"]
                            latest = view.store.latest(ack["warning_id"])
                            yield event("acknowledgement", view.decorate_ack(ack, latest))
                        yield event("status", view.processor())
                        next_status = time.monotonic() + STATUS_EVERY_S
                    await asyncio.sleep(0.2)
            finally:
                if q is not None:
                    follower.unsubscribe(q)

        return EventSourceResponse(events(), ping=15)

    return router
