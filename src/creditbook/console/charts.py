"""Balance-over-time charts as server-rendered SVG: no script, testable, with a text alternative.

A balance changes at a moment and then holds, so the chart is drawn in steps on a real date
axis (the x position of a day is its distance in days from the first), with labelled axes.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

from markupsafe import Markup, escape

from .web import money

WIDTH, HEIGHT = 640.0, 220.0
LEFT, RIGHT, TOP, BOTTOM = 84.0, 12.0, 12.0, 42.0
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Chart:
    """An SVG chart and the sentence that describes it (its text alternative)."""

    svg: Markup
    summary: str


def balance_points(changes: dict[str, int], opening: int = 0) -> list[tuple[str, int]]:
    """The balance at the end of each day with a change, from per-day net changes."""
    points, balance = [], opening
    for day in sorted(changes):
        balance += changes[day]
        points.append((day, balance))
    return points


def step_chart(points: list[tuple[str, int]], title: str, currency: str, end: str) -> Chart:
    """Chart a balance that is ``points[i][1]`` from day ``points[i][0]`` until the next point,
    and the last one up to ``end`` (days as ``YYYY-MM-DD``, in order).

    The SVG has ``role="img"``, a ``<title>`` and a ``<desc>`` holding the summary.
    """
    if not points:
        summary = "No balance changes yet."
        return Chart(_frame(title, summary, [], "", "", 0, 0, currency), summary)
    first_day, last_day = points[0][0], max(end, points[-1][0])
    values = [v for _, v in points]
    low, high = min(0, *values), max(0, *values)
    lowest = min(points, key=lambda p: (p[1], p[0]))
    highest = max(points, key=lambda p: (p[1], p[0]))
    summary = (
        f"Balance from {first_day} to {last_day}: {money(points[0][1])} {currency} at the end "
        f"of {first_day}, {money(points[-1][1])} {currency} at the end; lowest "
        f"{money(lowest[1])} on {lowest[0]}, highest {money(highest[1])} on {highest[0]}."
    )
    svg = _frame(title, summary, points, first_day, last_day, low, high, currency)
    return Chart(svg, summary)


def _x(day: str, first: dt.date, span: int) -> float:
    offset = (dt.date.fromisoformat(day) - first).days
    return LEFT + offset / span * (WIDTH - LEFT - RIGHT)


def _ticks(first: dt.date, last: dt.date) -> list[dt.date]:
    """Dates to label on the axis: month starts (or every few months, or week starts for a
    short range), at most about eight."""
    days = (last - first).days
    if days <= 45:
        step = max(1, days // 6)
        return [first + dt.timedelta(days=i) for i in range(0, days + 1, step)]
    months = []
    month = dt.date(first.year, first.month, 1)
    while month <= last:
        if month >= first:
            months.append(month)
        month = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
    every = max(1, -(-len(months) // 8))
    return months[::every] or [first]


def _frame(
    title: str,
    summary: str,
    points: list[tuple[str, int]],
    first_day: str,
    last_day: str,
    low: int,
    high: int,
    currency: str,
) -> Markup:
    n = next(_ids)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH:.0f} {HEIGHT:.0f}" role="img" '
        f'aria-labelledby="chart-title-{n}" aria-describedby="chart-desc-{n}">',
        f'<title id="chart-title-{n}">{escape(title)}</title>',
        f'<desc id="chart-desc-{n}">{escape(summary)}</desc>',
    ]
    bottom, inner_h = HEIGHT - BOTTOM, HEIGHT - BOTTOM - TOP
    parts.append(
        f'<line x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" '
        'stroke="currentColor" stroke-opacity="0.5"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" '
        'stroke="currentColor" stroke-opacity="0.5"/>'
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 4}" text-anchor="middle" '
        'class="axis">Date</text>'
        f'<text x="12" y="{(TOP + bottom) / 2:.0f}" text-anchor="middle" class="axis" '
        f'transform="rotate(-90 12 {(TOP + bottom) / 2:.0f})">Balance ({escape(currency)})</text>'
    )
    if not points:
        parts.append("</svg>")
        return Markup("".join(parts))  # noqa: S704 every piece of text in it is escaped
    first, last = dt.date.fromisoformat(first_day), dt.date.fromisoformat(last_day)
    span = max((last - first).days, 1)
    value_span = (high - low) or 1

    def y(value: int) -> float:
        return TOP + inner_h - (value - low) / value_span * inner_h

    for value in sorted({low, high, 0}):
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" '
            f'class="tick">{escape(money(value))}</text>'
        )
    for tick in _ticks(first, last):
        x = _x(tick.isoformat(), first, span)
        parts.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" '
            'stroke="currentColor" stroke-opacity="0.5"/>'
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" '
            f'class="tick">{tick.isoformat()}</text>'
        )
    # Each balance holds from its day until the next change: a horizontal run, then a step.
    coords = [(LEFT, y(points[0][1]))]
    for day, value in points[1:]:
        x = _x(day, first, span)
        coords.append((x, coords[-1][1]))
        coords.append((x, y(value)))
    coords.append((WIDTH - RIGHT, coords[-1][1]))
    line = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
    zero = y(0)
    area = f"{LEFT:.1f},{zero:.1f} {line} {WIDTH - RIGHT:.1f},{zero:.1f}"
    parts.append(f'<polygon points="{area}" fill="#3c71f7" fill-opacity="0.12"/>')
    parts.append(
        f'<polyline points="{line}" fill="none" stroke="#3c71f7" stroke-width="2" '
        'vector-effect="non-scaling-stroke"/>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 every piece of text in it is escaped above
