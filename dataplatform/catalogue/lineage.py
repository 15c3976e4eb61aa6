"""Lineage: which products feed which, from the derivation specs (a manifest's
``upstreamProducts`` only for a product no spec derives), drawn as an SVG picture in layers
(sources on the left, derived products to the right)."""

from __future__ import annotations

from html import escape

from dataplatform.derivations.loading import declared_upstream
from dataplatform.products.product import DataProduct


def edges(products: dict[str, DataProduct]) -> list[tuple[str, str]]:
    upstream = declared_upstream(products)
    return [(up, name) for name in products for up in upstream.get(name, []) if up in products]


def layers(products: dict[str, DataProduct]) -> dict[str, int]:
    depth: dict[str, int] = {}
    upstream = declared_upstream(products)

    def visit(name: str, seen: frozenset = frozenset()) -> int:
        if name in depth:
            return depth[name]
        ups = [u for u in upstream.get(name, []) if u in products and u not in seen]
        depth[name] = 1 + max((visit(u, seen | {name}) for u in ups), default=-1)
        return depth[name]

    for name in products:
        visit(name)
    return depth


def lineage_svg(products: dict[str, DataProduct], highlight: str | None = None) -> str:
    """An SVG of the lineage graph; ``highlight`` marks one product and its neighbours."""
    depth = layers(products)
    columns: dict[int, list[str]] = {}
    for name in sorted(products):
        columns.setdefault(depth[name], []).append(name)
    box_w, box_h, gap_x, gap_y, pad = 250, 44, 90, 26, 16
    pos = {name: (pad + col * (box_w + gap_x), pad + row * (box_h + gap_y))
           for col, names in columns.items() for row, name in enumerate(names)}
    width = pad * 2 + (max(columns, default=0) + 1) * (box_w + gap_x) - gap_x
    height = pad * 2 + max((len(v) for v in columns.values()), default=1) * (box_h + gap_y) - gap_y
    lines = edges(products)
    related = {highlight} | {a for a, b in lines if b == highlight} | {b for a, b in lines if a == highlight}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Lineage of data products" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="Arial, sans-serif" font-size="13">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto">'
             '<path d="M0,0 L10,5 L0,10 z" fill="#505a5f"/></marker></defs>']
    for a, b in lines:
        (ax, ay), (bx, by) = pos[a], pos[b]
        parts.append(f'<line x1="{ax + box_w}" y1="{ay + box_h / 2}" x2="{bx}" y2="{by + box_h / 2}" '
                     f'stroke="#505a5f" stroke-width="2" marker-end="url(#arrow)"/>')
    for name, (x, y) in pos.items():
        is_focus = name == highlight
        fill = "#1d70b8" if is_focus else ("#d2e2f1" if highlight and name in related else "#f3f2f1")
        text = "#ffffff" if is_focus else "#0b0c0c"
        parts.append(f'<a href="/catalogue/{escape(name)}"><rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" '
                     f'fill="{fill}" stroke="#0b0c0c" stroke-width="1"/>'
                     f'<text x="{x + 10}" y="{y + 27}" fill="{text}">{escape(name)}</text></a>')
    parts.append("</svg>")
    return "\n".join(parts)
