"""SVG geometry for the clicks-over-time chart, computed here and drawn by the template.

Each bucket is one bar: valid clicks at the bottom, the clicks set apart (bots and
repeats) stacked on top, so the height is every recorded click and the colours say
which part counts. The axis goes up in round steps (``axis``) so the gridlines read well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bannertrack.models import Interval, TrafficPoint

LEFT, RIGHT, TOP, BOTTOM = 44, 6, 12, 28
# Two drawings of one chart: the page shows the compact one on narrow screens, so the
# axis text keeps a readable size instead of shrinking with a wide drawing.
WIDE = (720, 260, 8)  # width, height, most x labels: beside the top banners
FULL = (1040, 300, 12)  # across the whole page
COMPACT = (360, 240, 4)


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    valid_y: float
    valid_height: float
    apart_y: float
    apart_height: float
    label: str  # the bucket, as the table and the tooltip show it
    valid: int
    apart: int


@dataclass(frozen=True, slots=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True, slots=True)
class BarChart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    baseline: float
    bars: tuple[Bar, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    peak: int


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 x 10^k that is >= value (at least 1)."""
    if value <= 1:
        return 1
    power = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def axis(peak: int) -> tuple[int, int]:
    """The y axis's top and step: a 1-2-5 step giving 3 to 6 ticks, whole numbers only.

    Rounding the top alone gave small counts two ticks (0 and 1, or 0 and 5); a step
    first keeps 0, 1, 2, 3 for a peak of 3.
    """
    step = nice_ceiling(math.ceil(peak / 5)) if peak > 5 else 1
    top = max(step * math.ceil(peak / step), 2 * step)
    return top, step


def bucket_label(point: TrafficPoint, interval: Interval) -> str:
    if interval == "day":
        return point.ts.strftime("%a %d %b")
    return point.ts.strftime("%d %b %H:%M")


def _short_label(point: TrafficPoint, interval: Interval) -> str:
    return point.ts.strftime("%d %b") if interval == "day" else point.ts.strftime("%H:%M")


def bar_chart(
    points: tuple[TrafficPoint, ...], interval: Interval, size: tuple[int, int, int] = WIDE
) -> BarChart:
    width, height, max_x_labels = size
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    baseline = TOP + plot_h
    peak = max((p.valid_clicks + p.bot_clicks + p.repeat_clicks for p in points), default=0)
    top, step = axis(peak)
    slot = plot_w / max(len(points), 1)
    gap = min(slot * 0.2, 6.0)
    bars = []
    for i, p in enumerate(points):
        apart = p.bot_clicks + p.repeat_clicks
        valid_h = plot_h * p.valid_clicks / top
        apart_h = plot_h * apart / top
        bars.append(
            Bar(
                x=round(LEFT + i * slot + gap / 2, 2),
                width=round(max(slot - gap, 1.0), 2),
                valid_y=round(baseline - valid_h, 2),
                valid_height=round(valid_h, 2),
                apart_y=round(baseline - valid_h - apart_h, 2),
                apart_height=round(apart_h, 2),
                label=bucket_label(p, interval),
                valid=p.valid_clicks,
                apart=apart,
            )
        )
    y_ticks = tuple(
        Tick(pos=round(baseline - plot_h * v / top, 2), label=f"{v:,}")
        for v in range(0, top + 1, step)
    )
    every = max(1, math.ceil(len(points) / max_x_labels))
    x_ticks = tuple(
        Tick(pos=round(LEFT + (i + 0.5) * slot, 2), label=_short_label(p, interval))
        for i, p in enumerate(points)
        if i % every == 0
    )
    return BarChart(
        width=width,
        height=height,
        plot_left=LEFT,
        plot_right=width - RIGHT,
        baseline=baseline,
        bars=tuple(bars),
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        peak=peak,
    )
