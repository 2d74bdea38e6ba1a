"""Line charts as server-rendered SVG: no script, testable, with a text alternative."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from markupsafe import Markup, escape

from .web import money

WIDTH, HEIGHT, PAD = 640.0, 180.0, 8.0
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Chart:
    """An SVG line chart and the sentence that describes it (its text alternative)."""

    svg: Markup
    summary: str


def line_chart(points: list[tuple[str, int]], title: str, currency: str) -> Chart:
    """Chart (label, cents) points, evenly spaced, in order.

    The SVG has ``role="img"``, a ``<title>`` and a ``<desc>`` holding the summary.
    """
    if not points:
        summary = "No balance changes yet."
        return Chart(_svg([], title, summary, 0, 0), summary)
    values = [v for _, v in points]
    low, high = min(0, *values), max(values)
    first, last = points[0], points[-1]
    summary = (
        f"From {money(first[1])} {currency} on {first[0]} to {money(last[1])} {currency} on "
        f"{last[0]}; lowest {money(min(values))}, highest {money(high)}."
    )
    return Chart(_svg(points, title, summary, low, high), summary)


def _svg(points: list[tuple[str, int]], title: str, summary: str, low: int, high: int) -> Markup:
    n = next(_ids)
    span = (high - low) or 1
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = inner_w / max(len(points) - 1, 1)
    coords = [
        (PAD + i * step, PAD + inner_h - (value - low) / span * inner_h)
        for i, (_, value) in enumerate(points)
    ]
    if len(coords) == 1:
        coords.append((WIDTH - PAD, coords[0][1]))
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    area = f"{PAD:.1f},{HEIGHT - PAD:.1f} {line} {WIDTH - PAD:.1f},{HEIGHT - PAD:.1f}"
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH:.0f} {HEIGHT:.0f}" role="img" '
        f'aria-labelledby="chart-title-{n}" aria-describedby="chart-desc-{n}" '
        'preserveAspectRatio="none">',
        f'<title id="chart-title-{n}">{escape(title)}</title>',
        f'<desc id="chart-desc-{n}">{escape(summary)}</desc>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="currentColor" stroke-opacity="0.3"/>',
    ]
    if points:
        parts.append(f'<polygon points="{area}" fill="#3c71f7" fill-opacity="0.12"/>')
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="#3c71f7" stroke-width="2" '
            'vector-effect="non-scaling-stroke"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 every piece of text in it is escaped above
