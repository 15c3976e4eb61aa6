"""The restart benchmark's chart: time to first output and peak memory per entity count.

An SVG written directly (no charting library in the project; the warnings pages draw
their SVG the same way), with a <title> and <desc> so the facts are readable as text too.
"""

from __future__ import annotations

from html import escape

BAR, TARGET = "#1d70b8", "#d4351c"


def _panel(x0: int, title: str, unit: str, values: list[tuple[str, float]], target: float | None,
           width: int = 300, height: int = 240) -> str:
    top, bottom, left = 34, 36, 48
    plot_h, plot_w = height - top - bottom, width - left - 12
    ceiling = max([v for _, v in values] + [target or 0]) * 1.15 or 1

    def y(v: float) -> float:
        return top + plot_h * (1 - v / ceiling)

    slot = plot_w / max(1, len(values))
    parts = [f'<text x="{x0 + left}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{x0 + left}" x2="{x0 + left}" y1="{top}" y2="{top + plot_h}" stroke="#0b0c0c"/>',
             f'<line x1="{x0 + left}" x2="{x0 + left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#0b0c0c"/>']
    for tick in (0, ceiling / 2, ceiling):
        parts.append(f'<text x="{x0 + left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">'
                     f'{tick:,.0f}</text>')
    for i, (label, value) in enumerate(values):
        bx = x0 + left + slot * i + slot * 0.2
        parts.append(f'<rect x="{bx:.1f}" y="{y(value):.1f}" width="{slot * 0.6:.1f}" '
                     f'height="{top + plot_h - y(value):.1f}" fill="{BAR}"/>')
        parts.append(f'<text x="{bx + slot * 0.3:.1f}" y="{y(value) - 4:.1f}" text-anchor="middle" font-size="11">'
                     f'{value:,.1f} {unit}</text>')
        parts.append(f'<text x="{bx + slot * 0.3:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                     f'font-size="11">{escape(label)}</text>')
    parts.append(f'<text x="{x0 + left + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle" '
                 f'font-size="11">entities in the tables</text>')
    if target is not None:
        parts.append(f'<line x1="{x0 + left}" x2="{x0 + left + plot_w}" y1="{y(target):.1f}" y2="{y(target):.1f}" '
                     f'stroke="{TARGET}" stroke-dasharray="6 4" stroke-width="1.5"/>'
                     f'<text x="{x0 + left + plot_w}" y="{y(target) - 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="{TARGET}">target {target:,.0f} {unit}</text>')
    return "".join(parts)


def restart_chart(rows: list[dict], target_s: float, store: str = "memory://") -> str:
    """Two bar panels over the entity counts of ``rows`` (bench.restart's rows)."""
    labels = [f"{r['entities']:,}" for r in rows]
    times = [(label, r["first_output_s"]) for label, r in zip(labels, rows)]
    memory = [(label, r["peak_rss_mb"]) for label, r in zip(labels, rows)]
    desc = "; ".join(f"{r['entities']:,} entities: first output after {r['first_output_s']} s, "
                     f"peak resident memory {r['peak_rss_mb']} MB" for r in rows)
    width, height = 620, 240
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="Arial, sans-serif">'
            f'<title>Processor restart with state ({escape(store)} tables, one worker)</title>'
            f'<desc>{escape(desc)}</desc><rect width="{width}" height="{height}" fill="#fff"/>'
            f'{_panel(0, "Start to first output", "s", times, target_s)}'
            f'{_panel(310, "Worker peak resident memory", "MB", memory, None)}</svg>\n')
