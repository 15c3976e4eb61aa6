"""Pictures for the warnings pages, drawn on the server as SVG.

No charting library and no CDN: the pages must work offline in a control room, and two
small pictures do not justify shipping JavaScript. Each function returns an SVG string
with a <title> and <desc>, so a screen reader gets the same facts as the picture.
"""

from __future__ import annotations

import datetime as dt
from html import escape

from dataplatform.products.reference import local_authorities, regions

SUPPLY_COLOUR, DEMAND_COLOUR = "#1d70b8", "#d4351c"
SEVERITY_COLOURS = {"RED": "#d4351c", "AMBER": "#f47738", "NONE": "#00703c"}
#: English regions and Wales on a tile grid (column, row), roughly where they lie on a map.
REGION_TILES = {
    "E12000001": (2, 0),                                            # North East
    "E12000002": (1, 1), "E12000003": (2, 1),                       # North West, Yorkshire and The Humber
    "W92000004": (0, 2), "E12000005": (1, 2), "E12000004": (2, 2), "E12000006": (3, 2),  # Wales, W & E Midlands, East
    "E12000009": (1, 3), "E12000008": (2, 3), "E12000007": (3, 3),  # South West, South East, London
}
SHORT_NAMES = {"Yorkshire and The Humber": "Yorkshire & Humber", "East of England": "East"}


def _time(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso)


def _step_path(points: list[tuple[float, float]]) -> str:
    """A step line: figures hold their value until the next change."""
    if not points:
        return ""
    d = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for (x, y), (_px, py) in zip(points[1:], points[:-1]):
        d.append(f"H{x:.1f}V{y:.1f}" if y != py else f"H{x:.1f}")
    return "".join(d)


def figures_chart(series: list[dict], *, days: int = 28, now: dt.datetime | None = None,
                  width: int = 640, height: int = 200, title: str = "Supply and demand",
                  transitions: list[dict] = ()) -> str:
    """Supply and demand of one area over the last ``days`` as two step lines with axes, and a
    vertical mark at the moment of each of ``transitions`` (``at``, ``severity``, ``transition``)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    start = now - dt.timedelta(days=days)
    left, right, top, bottom = 44, 28, 30, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    inside = [s for s in series if _time(s["as_of"]) >= start]
    before = [s for s in series if _time(s["as_of"]) < start]
    points = ([{**before[-1], "as_of": start.isoformat()}] if before else []) + inside
    top_value = max([1] + [max(s["supply"], s["demand"]) for s in points])

    def x(iso: str) -> float:
        return left + plot_w * (_time(iso) - start).total_seconds() / (now - start).total_seconds()

    def y(v: int) -> float:
        return top + plot_h * (1 - v / top_value)

    lines = []
    for key, colour in (("supply", SUPPLY_COLOUR), ("demand", DEMAND_COLOUR)):
        pts = [(x(s["as_of"]), y(s[key])) for s in points]
        if pts:
            pts.append((left + plot_w, pts[-1][1]))  # the last figures still hold now
            lines.append(f'<path class="{key}" d="{_step_path(pts)}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
    ticks = [f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v}</text>'
             f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#b1b4b6" stroke-width="0.5"/>'
             for v in sorted({0, top_value // 2, top_value})]
    dates = [f'<text x="{left + plot_w * i / 4:.1f}" y="{height - 8}" text-anchor="middle" font-size="11">'
             f'{(start + (now - start) * i / 4):%d %b}</text>' for i in range(5)]
    marks = []
    for t in transitions:
        if t.get("at") and start <= _time(t["at"]) <= now:
            at, colour, words = x(t["at"]), SEVERITY_COLOURS.get(t["severity"], "#0b0c0c"), f"{t['severity']} {t['transition']}"
            marks.append(f'<g class="transition" data-transition="{escape(words)}"><title>{escape(words)}, '
                         f'{escape(t.get("at_display") or t["at"])}</title><line x1="{at:.1f}" x2="{at:.1f}" y1="{top}" '
                         f'y2="{top + plot_h}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="4 3"/></g>')
    last = points[-1] if points else None
    desc = (f"Over the last {days} days: {len(inside)} change(s); now supply {last['supply']}, demand {last['demand']}."
            if last else f"No figures recorded in the last {days} days.")
    if marks:
        desc += f" {len(marks)} warning transition(s) marked."
    legend = (f'<text x="{left}" y="14" font-size="12" fill="{SUPPLY_COLOUR}">━ homes available (supply)</text>'
              f'<text x="{left + 190}" y="14" font-size="12" fill="{DEMAND_COLOUR}">━ people needing housing (demand)</text>'
              + (f'<line x1="{left + 420}" x2="{left + 420}" y1="4" y2="16" stroke="#0b0c0c" stroke-dasharray="3 2"/>'
                 f'<text x="{left + 426}" y="14" font-size="12" fill="#0b0c0c">warning transitions</text>' if marks else ""))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="app-chart" role="img" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="Arial, sans-serif"><title>{escape(title)}</title>'
            f'<desc>{escape(desc)}</desc>{"".join(ticks)}{"".join(dates)}{"".join(lines)}{"".join(marks)}{legend}</svg>')


def sparkline(series: list[dict], *, days: int = 28, now: dt.datetime | None = None) -> str:
    """The same two lines, small enough for a table row."""
    now = now or dt.datetime.now(dt.timezone.utc)
    start = now - dt.timedelta(days=days)
    kept = [s for s in series if _time(s["as_of"]) >= start] or series[-1:]
    if not kept:
        return ""
    width, height = 120, 28
    top_value = max([1] + [max(s["supply"], s["demand"]) for s in kept])
    span = (now - start).total_seconds()
    paths = []
    for key, colour in (("supply", SUPPLY_COLOUR), ("demand", DEMAND_COLOUR)):
        pts = [(max(0.0, width * (_time(s["as_of"]) - start).total_seconds() / span),
                2 + (height - 4) * (1 - s[key] / top_value)) for s in kept]
        pts.append((float(width), pts[-1][1]))
        paths.append(f'<path d="{_step_path(pts)}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
    last = kept[-1]
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="app-spark" role="img" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}"><title>Supply {last["supply"]}, demand {last["demand"]} '
            f'(last {days} days)</title>{"".join(paths)}</svg>')


def region_severities(current: list[dict]) -> dict[str, str]:
    """Each region's most severe current warning, its own or any of its local authorities'."""
    rank = {"NONE": 0, "AMBER": 1, "RED": 2}
    las = local_authorities()
    worst: dict[str, str] = {}
    for w in current:
        region = las[w["area_code"]].region_code if w["area_code"] in las else w["area_code"]
        if rank.get(w["severity"], 0) > rank.get(worst.get(region, "NONE"), 0):
            worst[region] = w["severity"]
    return worst


def region_tiles(severity_by_region: dict[str, str], *, tile: int = 96, gap: int = 6) -> str:
    """A tile map of the regions coloured by their worst current warning, each linking to history."""
    names = regions()
    cols = 1 + max(c for c, _ in REGION_TILES.values())
    rows = 1 + max(r for _, r in REGION_TILES.values())
    width, height = cols * (tile + gap), rows * (tile + gap)
    parts = []
    for code, (c, r) in REGION_TILES.items():
        severity = severity_by_region.get(code, "NONE")
        name = names.get(code, code)
        label = SHORT_NAMES.get(name, name)
        words = label.split(" ")
        lines = [" ".join(words[: len(words) // 2 or 1]), " ".join(words[len(words) // 2 or 1:])] if len(label) > 11 else [label]
        text = "".join(f'<tspan x="{tile / 2}" dy="{0 if i == 0 else 14}">{escape(line)}</tspan>'
                       for i, line in enumerate(lines) if line)
        state = "no warning" if severity == "NONE" else severity
        parts.append(
            f'<a href="/warnings/history?area={escape(name)}" class="tile" data-region="{code}" data-severity="{severity}">'
            f'<g transform="translate({c * (tile + gap)},{r * (tile + gap)})"><title>{escape(name)}: {state}</title>'
            f'<rect width="{tile}" height="{tile}" rx="4" fill="{SEVERITY_COLOURS.get(severity, "#b1b4b6")}"/>'
            f'<text y="{tile / 2 - 6}" text-anchor="middle" font-size="12" font-weight="bold" fill="#fff">{text}</text>'
            f'<text x="{tile / 2}" y="{tile - 10}" text-anchor="middle" font-size="11" fill="#fff">{state}</text></g></a>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="app-tiles" role="img" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="Arial, sans-serif"><title>Regions by their most severe '
            f'current warning</title>{"".join(parts)}</svg>')
