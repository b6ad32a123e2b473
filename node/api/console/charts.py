"""Charts as inline SVG, drawn on the server: no script, no CDN, readable on an offline site and printable."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH, BAR, GAP, LABEL = 560, 18, 6, 230


def bars(items: Sequence[tuple[str, int | float]], unit: str = "") -> Markup:
    """A horizontal bar per (label, value), scaled to the largest; values printed at the bar's end."""
    top = max((abs(float(v)) for _, v in items), default=0.0) or 1.0
    height = len(items) * (BAR + GAP) + GAP
    parts = [f'<svg class="chart" role="img" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">']
    span = WIDTH - LABEL - 90
    for i, (label, value) in enumerate(items):
        y = GAP + i * (BAR + GAP)
        width = max(1.0, span * abs(float(value)) / top) if value else 0.0
        shown = f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
        parts.append(
            f'<text x="{LABEL - 8}" y="{y + BAR - 5}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{LABEL}" y="{y}" width="{width:.1f}" height="{BAR}">'
            f"<title>{escape(label)}: {shown}</title></rect>"
            f'<text x="{LABEL + width + 6:.1f}" y="{y + BAR - 5}">{escape(shown)}{escape(unit)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
