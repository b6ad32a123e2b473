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


def columns(steps: Sequence[str], series: Sequence[tuple[str, Sequence[int | float]]], unit: str = "") -> Markup:
    """Values over time: for each step (a day or a week) a group of columns, one per series (a member), with
    the steps' labels below and a legend; the tallest column is the largest value."""
    width, height, base = 640, 180, 150
    groups = max(1, len(steps))
    top = max((abs(float(v)) for _, values in series for v in values), default=0.0) or 1.0
    group_w = (width - 20) / groups
    bar_w = max(2.0, (group_w - 4) / max(1, len(series)))
    parts = [f'<svg class="chart columns" role="img" width="{width}" height="{height + 18 * len(series)}">']
    for i, step in enumerate(steps):
        x0 = 10 + i * group_w
        for k, (name, values) in enumerate(series):
            value = float(values[i]) if i < len(values) else 0.0
            h = (base - 10) * abs(value) / top
            parts.append(
                f'<rect class="s{k % 6}" x="{x0 + k * bar_w:.1f}" y="{base - h:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{h:.1f}"><title>{escape(name)}, {escape(step)}: {value:,.0f}{escape(unit)}</title></rect>'
            )
        if groups <= 14 or i % max(1, groups // 7) == 0:
            parts.append(f'<text x="{x0:.1f}" y="{base + 14}">{escape(step[5:])}</text>')
    for k, (name, _values) in enumerate(series):
        y = height + 18 * k
        parts.append(f'<rect class="s{k % 6}" x="10" y="{y - 10}" width="10" height="10"></rect>')
        parts.append(f'<text x="26" y="{y}">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
