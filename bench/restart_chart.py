"""The restart benchmark's chart: time to first output and peak memory per entity count.

An SVG written directly (no charting library in the project; the warnings pages draw
their SVG the same way), with a <title> and <desc> so the facts are readable as text too.
One bar per table store and entity count; for rocksdb:// the restart that keeps its local
store, and a lighter bar for a worker starting on an empty one.
"""

from __future__ import annotations

import math
from html import escape

COLOURS = {"memory://": "#1d70b8", "rocksdb://": "#00703c", "rocksdb:// (empty local store)": "#85994b"}
TARGET = "#d4351c"


def _series(results: dict[str, list[dict]], key: str) -> list[tuple[str, dict[int, float]]]:
    """(label, value per entity count) for each store measured, in a stable order."""
    out = []
    for store, rows in sorted(results.items()):
        out.append((store, {r["entities"]: r[key] for r in rows if key in r}))
        for prefix, label in (("cold_", "empty local store, bulk restore"), ("faust_cold_", "empty local store, Faust's restore")):
            cold = {r["entities"]: r[f"{prefix}{key}"] for r in rows if f"{prefix}{key}" in r}
            if cold:
                out.append((f"{store} ({label})", cold))
    return out


def _panel(x0: int, title: str, unit: str, series: list[tuple[str, dict[int, float]]], target: float | None,
           log: bool = False, width: int = 420, height: int = 260) -> str:
    """Grouped bars; ``log``: a logarithmic axis from 1 (seconds span three orders of magnitude)."""
    top, bottom, left = 34, 40, 52
    plot_h, plot_w = height - top - bottom, width - left - 12
    counts = sorted({n for _, values in series for n in values})
    ceiling = max([v for _, values in series for v in values.values()] + [target or 0]) * 1.15 or 1
    if log:
        ceiling = 10 ** math.ceil(math.log10(ceiling))

    def y(v: float) -> float:
        share = math.log10(max(v, 1)) / math.log10(ceiling) if log else v / ceiling
        return top + plot_h * (1 - share)

    slot = plot_w / max(1, len(counts))
    bar = slot * 0.8 / max(1, len(series))
    parts = [f'<text x="{x0 + left}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{x0 + left}" x2="{x0 + left}" y1="{top}" y2="{top + plot_h}" stroke="#0b0c0c"/>',
             f'<line x1="{x0 + left}" x2="{x0 + left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#0b0c0c"/>']
    ticks = [10 ** e for e in range(int(math.log10(ceiling)) + 1)] if log else [0, ceiling / 2, ceiling]
    for tick in ticks:
        parts.append(f'<text x="{x0 + left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">'
                     f'{tick:,.0f}</text>')
    for i, n in enumerate(counts):
        centre = x0 + left + slot * (i + 0.5)
        parts.append(f'<text x="{centre:.1f}" y="{top + plot_h + 15}" text-anchor="middle" font-size="11">{n:,}</text>')
        for j, (label, values) in enumerate(series):
            if n not in values:
                continue
            bx, value = x0 + left + slot * i + slot * 0.1 + bar * j, values[n]
            parts.append(f'<rect x="{bx:.1f}" y="{y(value):.1f}" width="{bar * 0.9:.1f}" '
                         f'height="{top + plot_h - y(value):.1f}" fill="{COLOURS.get(label, "#505a5f")}">'
                         f'<title>{escape(label)}, {n:,} entities: {value:,.1f} {unit}</title></rect>')
            parts.append(f'<text x="{bx + bar * 0.45:.1f}" y="{y(value) - 3:.1f}" text-anchor="middle" '
                         f'font-size="10">{value:,.0f}</text>')
    parts.append(f'<text x="{x0 + left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle" '
                 f'font-size="11">entities in the tables</text>')
    if target is not None:
        parts.append(f'<line x1="{x0 + left}" x2="{x0 + left + plot_w}" y1="{y(target):.1f}" y2="{y(target):.1f}" '
                     f'stroke="{TARGET}" stroke-dasharray="6 4" stroke-width="1.5"/>'
                     f'<text x="{x0 + left + 4}" y="{y(target) - 4:.1f}" font-size="11" '
                     f'fill="{TARGET}">target {target:,.0f} {unit}</text>')
    return "".join(parts)


def restart_chart(results: dict[str, list[dict]], target_s: float) -> str:
    """Two panels (seconds to first output, peak resident MB) from bench.restart's rows per store."""
    times, memory = _series(results, "first_output_s"), _series(results, "peak_rss_mb")
    legend = "".join(f'<rect x="{10 + 250 * i}" y="{272}" width="12" height="12" fill="{COLOURS.get(label, "#505a5f")}"/>'
                     f'<text x="{28 + 250 * i}" y="{282}" font-size="12">{escape(label)}</text>'
                     for i, (label, _) in enumerate(times))
    desc = "; ".join(f"{label}: " + ", ".join(f"{n:,} entities {v:,.1f} s" for n, v in sorted(values.items()))
                     for label, values in times)
    width, height = 860, 292
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="Arial, sans-serif">'
            f'<title>Processor restart with state: one worker, start to first output and peak memory</title>'
            f'<desc>Start to first output: {escape(desc)}</desc><rect width="{width}" height="{height}" fill="#fff"/>'
            f'{_panel(0, "Start to first output (s, log scale)", "s", times, target_s, log=True)}'
            f'{_panel(430, "Worker peak resident memory (MB)", "MB", memory, None)}{legend}</svg>\n')


if __name__ == "__main__":   # redraw the chart from the saved results
    from bench.restart import CHART, TARGET_S, _saved_results

    CHART.write_text(restart_chart(_saved_results(), TARGET_S))
    print(f"wrote {CHART}")
