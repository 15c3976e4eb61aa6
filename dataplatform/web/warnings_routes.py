"""Live warnings for operations: the pages (live list, one warning's evidence, history, rules).

The JSON API and the live stream behind them are in :mod:`dataplatform.web.warnings_api`.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dataplatform.config import shown
from dataplatform.warnings.acknowledgements import AcknowledgementError
from dataplatform.warnings.guidance import guides
from dataplatform.warnings.kinds import warning_kinds
from dataplatform.warnings.store import HistoryFilter
from dataplatform.web.charts import figures_chart, region_severities, region_tiles
from dataplatform.web.templating import display_time, templates
from dataplatform.web.warnings_view import WarningsView

SEVERITIES = ("RED", "AMBER", "NONE")
HISTORY_PAGE_SIZE = 50


class FilterError(ValueError):
    """A history filter that cannot be used; the message names the field and the format."""


def history_filter(area: str, severity: str, since: str, until: str, zone: str) -> HistoryFilter:
    """Dates are whole days in the page's time zone; ``until`` includes its day."""
    severity = severity.upper().strip()
    if severity and severity not in SEVERITIES:
        raise FilterError(f"severity {shown(severity)} is not one of {', '.join(SEVERITIES)}")

    def day(value: str, name: str) -> dt.datetime | None:
        if not value.strip():
            return None
        try:
            return dt.datetime.combine(dt.date.fromisoformat(value.strip()), dt.time(), ZoneInfo(zone))
        except ValueError:
            raise FilterError(f"{name} {shown(value)} is not a date: use YYYY-MM-DD, e.g. 2026-03-01") from None

    start, end = day(since, "from"), day(until, "to")
    if end is not None and end.date() == dt.date.max:
        end = None   # up to the end of the calendar: no upper bound (the day after would not exist)
    elif end is not None:
        end += dt.timedelta(days=1)
    if start and end and start >= end:
        raise FilterError("'from' is after 'to': swap the dates")
    return HistoryFilter(area=area.strip(), severity=severity, since=start, until=end)


def _with_moment(view: WarningsView, transition: dict) -> dict:
    """A transition as the evidence page shows it, with ``at``: when the processor judged it
    (rows stored before that was kept: its raising time, else when it was received)."""
    t = view.decorate(transition)
    at = t.get("transition_at") or (t.get("raised_at") if t["transition"] == "raised" else t.get("received_at"))
    return {**t, "at": at, "at_display": display_time(at, view.zone)}


def create_warnings_router(view: WarningsView) -> APIRouter:
    router = APIRouter()

    def tiles() -> str:
        """Regions by their worst warning, of the kinds whose groups are areas with figures kept."""
        return region_tiles(region_severities([w for w in view.current_rows()
                                               if view.charted(warning_kinds().get(w["product"]))]))

    @router.get("/warnings", response_class=HTMLResponse, tags=["warnings"], summary="Live warnings page")
    def warnings_page(request: Request):
        kinds = view.kinds()
        return templates.TemplateResponse(request, "warnings.html", {
            "title": "Live warnings", "warnings": view.current(), "processor": view.processor(),
            "tiles": tiles(), "guides": guides(), "zone": view.zone, "kinds": kinds,
            "charted": [k for k in kinds if view.charted(k)], "uncharted": [k for k in kinds if not view.charted(k)]})

    @router.get("/warnings/tiles.svg", tags=["warnings"], summary="Regions coloured by their worst current warning")
    def tiles_svg() -> Response:
        return Response(tiles(), media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

    @router.get("/warnings/rules", response_class=HTMLResponse, tags=["warnings"], summary="The rules explained, with runbooks")
    def rules_page(request: Request):
        return templates.TemplateResponse(request, "rules.html", {"title": "Warning rules", "guides": guides()})

    @router.get("/warnings/history", response_class=HTMLResponse, tags=["warnings"], summary="Warning history page")
    def history_page(request: Request, area: str = "", severity: str = "", since: str = "", until: str = "",
                     page: int = Query(1, ge=1, le=10**9, description="Page number, from 1")):
        asked = {"area": area, "severity": severity.upper(), "since": since, "until": until}
        try:
            where = history_filter(area, severity, since, until, view.zone)
        except FilterError as exc:
            return templates.TemplateResponse(request, "history.html", {
                "title": "Warning history", "error": str(exc), "asked": asked, "rows": [], "result": None},
                status_code=400)
        result = view.store.history_page(where, page, HISTORY_PAGE_SIZE)
        query = {k: v for k, v in asked.items() if v}
        return templates.TemplateResponse(request, "history.html", {
            "title": "Warning history", "asked": asked, "result": result, "error": None,
            "rows": [view.decorate(w) for w in result.rows],
            "page_url": lambda n: "/warnings/history?" + urlencode({**query, "page": n}),
            "live_filter": {"area": where.area, "severity": where.severity,
                            "since": where.since.isoformat() if where.since else "",
                            "until": where.until.isoformat() if where.until else ""}})

    @router.get("/warnings/{warning_id:path}", response_class=HTMLResponse, tags=["warnings"],
                summary="One warning: its evidence, owners, runbook and acknowledgements")
    def warning_page(request: Request, warning_id: str, days: int = 28):
        latest = view.store.latest(warning_id)
        if latest is None:
            raise HTTPException(404, f"no warning {shown(warning_id)}: see /warnings for current warnings")
        days = min(max(days, 1), 366)
        w = view.decorate(latest)
        since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
        series = view.figures.series(latest["group_code"], since) if w["charted"] else []
        changes = [c for c in reversed(series) if c["supply_before"] is not None or c["demand_before"] is not None][:50]
        acks = [view.decorate_ack(a, latest) for a in view.acks.for_warning(warning_id)]
        guide = next((g for g in guides() if g.id == latest["rule_id"]), None)
        transitions = [_with_moment(view, t) for t in view.store.history(20, HistoryFilter(area=latest["group_code"]))
                       if t["warning_id"] == warning_id]
        w = _with_moment(view, latest)
        raised = next((t for t in transitions if t["transition"] == "raised"), None)
        now = ({**view.decorate({**latest, "have": series[-1]["supply"], "need": series[-1]["demand"]}),
                "at_display": display_time(series[-1]["as_of"], view.zone)} if series else None)
        return templates.TemplateResponse(request, "warning.html", {
            "title": f"{latest['group_name']}: {latest['severity']}", "w": w, "acks": acks,
            "chart": figures_chart(series, days=days, title=f"Supply and demand in {latest['group_name']}",
                                   transitions=transitions) if w["charted"] else None,
            "days": days, "changes": [{**c, "as_of_display": display_time(c["as_of"], view.zone)} for c in changes],
            "transitions": transitions, "raised": raised if raised and raised["event_id"] != w["event_id"] else None,
            "now": now, "owners": view.input_owners(latest["product"]), "guide": guide,
            "quoted_id": quote(warning_id, safe="")})

    @router.post("/warnings/{warning_id:path}/acknowledge", tags=["warnings"], summary="Acknowledge a warning (HTML form)")
    async def acknowledge_form(request: Request, warning_id: str):
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        try:
            view.acks.add(warning_id, form.get("by", ""), form.get("note", ""))
        except AcknowledgementError as exc:
            return RedirectResponse(f"/warnings/{quote(warning_id, safe='')}?ack_error={quote(str(exc))}#acknowledge",
                                    status_code=303)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        return RedirectResponse(f"/warnings/{quote(warning_id, safe='')}#acknowledgements", status_code=303)

    return router
