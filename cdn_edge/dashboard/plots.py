"""Time-series plots as inline SVG, drawn on the server: no script, no fonts or files to
fetch, so the page works with no internet and scales to any screen (``viewBox``).

Each plot is a few polylines over a shared time axis, with the highest value and the
window's start and end written on the axes. Series longer than :data:`MAX_POINTS` are
merged into buckets first, so a week of minutes never makes a page of megabytes.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 600, 180
LEFT, RIGHT, TOP, BOTTOM = 8, 8, 28, 24
MAX_POINTS = 240
COLOURS = ("#2f6fdf", "#e0812b", "#2aa876", "#c2415d")

Point = tuple[float, float]


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[Point]
    """(unix time, value), oldest first."""


def plot(title: str, series: Sequence[Series], span: tuple[float, float],
         label: Callable[[float], str]) -> str:  # fmt: skip
    """An ``<svg>`` of ``series`` over the time ``span`` (start, end); ``label`` writes a
    value for the axis (e.g. as BTT or bytes per second)."""
    start, end = span
    top = max((v for s in series for _, v in s.points), default=0.0)
    scale_top = top if top > 0 else 1.0
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def xy(point: Point) -> str:
        t, v = point
        x = LEFT + inner_w * (t - start) / max(end - start, 1.0)
        y = TOP + inner_h * (1 - v / scale_top)
        return f"{x:.1f},{y:.1f}"

    lines = []
    legend = []
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        points = " ".join(xy(p) for p in s.points if start <= p[0] <= end)
        lines.append(f'<polyline class="series" data-series="{html.escape(s.name)}" '
                     f'fill="none" stroke="{colour}" stroke-width="2" '
                     f'stroke-linejoin="round" points="{points}"/>')  # fmt: skip
        legend.append(f'<tspan fill="{colour}">■ {html.escape(s.name)}</tspan>')
    base_y = TOP + inner_h
    return (
        f'<svg class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{html.escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{html.escape(title)}</title>"
        f'<text x="{LEFT}" y="19" class="plot-title">{html.escape(title)} '
        f"{' '.join(legend)}</text>"
        f'<text x="{WIDTH - RIGHT}" y="19" text-anchor="end" class="axis">max '
        f"{html.escape(label(top))}</text>"
        f'<line x1="{LEFT}" y1="{TOP}" x2="{WIDTH - RIGHT}" y2="{TOP}" class="topline"/>'
        f'<line x1="{LEFT}" y1="{base_y}" x2="{WIDTH - RIGHT}" y2="{base_y}" class="base"/>'
        f"{''.join(lines)}"
        f'<text x="{LEFT}" y="{HEIGHT - 4}" class="axis">{_clock(start)}</text>'
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 4}" text-anchor="end" class="axis">'
        f"{_clock(end)}</text></svg>"
    )


def bucket(points: Sequence[Point], span: tuple[float, float], *, add: bool) -> list[Point]:
    """At most :data:`MAX_POINTS` points: each bucket keeps its last point's time and the
    sum (``add``: amounts per interval) or the last value (levels) of its points."""
    start, end = span
    width = max(end - start, 1.0) / MAX_POINTS
    out: dict[int, Point] = {}
    for t, v in points:
        key = int((t - start) // width)
        out[key] = (t, v + out[key][1] if key in out and add else v)
    return [out[k] for k in sorted(out)]


def _clock(t: float) -> str:
    return time.strftime("%H:%M", time.localtime(t))
