"""The data of a dashboard page, gathered from the ``Repository`` for one period.

The page is server-rendered from this, so every number is in the HTML and needs no
script.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bannertrack.dashboard.charts import COMPACT, FULL, WIDE, BarChart, bar_chart, bucket_label
from bannertrack.dashboard.figures import Figure, key_figures
from bannertrack.dashboard.filters import shown_value
from bannertrack.dashboard.periods import PRESETS, Period
from bannertrack.models import (
    Banner,
    Breakdown,
    ClickFilter,
    Dimension,
    RangeTotals,
    TopBanners,
    TrafficSeries,
)
from bannertrack.repository import Explorer, Repository

TOP_LIMIT = 10
BREAKDOWN_LIMIT = 8
# The breakdown lists the pages show, in order: (dimension, card title, column heading).
BREAKDOWNS: tuple[tuple[Dimension, str, str], ...] = (
    ("referrer", "Referrers", "Referrer"),
    ("utm_source", "Sources", "utm_source"),
    ("utm_medium", "Media", "utm_medium"),
    ("utm_campaign", "Campaigns", "utm_campaign"),
    ("country", "Countries", "Country"),
    ("device", "Devices", "Device"),
    ("browser", "Browsers", "Browser"),
    ("os", "Operating systems", "OS"),
)


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    ts: datetime
    valid: int
    bot: int
    repeat: int
    impressions: int | None


@dataclass(frozen=True, slots=True)
class BreakdownList:
    by: str
    title: str
    column: str
    items: tuple[tuple[str, str, int], ...]  # value, as shown, clicks
    other: int


@dataclass(frozen=True, slots=True)
class PageData:
    period: Period
    totals: RangeTotals
    figures: tuple[Figure, ...]
    chart: BarChart
    compact_chart: BarChart
    rows: tuple[Row, ...]
    top: TopBanners | None
    breakdowns: tuple[BreakdownList, ...]
    incomplete_before: datetime | None = None  # filtered, and retention dropped older clicks

    def context(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "presets": PRESETS,
            "totals": self.totals,
            "figures": self.figures,
            "chart": self.chart,
            "compact_chart": self.compact_chart,
            "rows": self.rows,
            "top": self.top,
            "top_peak": max((t.clicks for t in self.top.items), default=0) if self.top else 0,
            "breakdowns": self.breakdowns,
            "incomplete_before": self.incomplete_before,
        }


def _rows(series: TrafficSeries) -> tuple[Row, ...]:
    return tuple(
        Row(
            label=bucket_label(p, series.interval),
            ts=p.ts,
            valid=p.valid_clicks,
            bot=p.bot_clicks,
            repeat=p.repeat_clicks,
            impressions=p.impressions,
        )
        for p in series.points
    )


def _as_list(by: Dimension, title: str, column: str, found: Breakdown) -> BreakdownList:
    return BreakdownList(
        by=by,
        title=title,
        column=column,
        items=tuple((i.value, shown_value(by, i.value), i.clicks) for i in found.items),
        other=found.other,
    )


async def breakdown_lists(
    repo: Repository, banner_id: int | None, period: Period
) -> tuple[BreakdownList, ...]:
    """Where the valid clicks of the period came from, one list per ``BREAKDOWNS`` entry.

    The breakdown rollups are daily; the page's periods start at a UTC midnight, so the
    days they widen to hold the same clicks up to now.
    """
    lists = []
    for by, title, column in BREAKDOWNS:
        found = await repo.breakdown(
            banner_id, by, period.start, period.end, "valid", BREAKDOWN_LIMIT
        )
        if found is None:
            continue  # the banner was deleted meanwhile; page_data notices it too
        lists.append(_as_list(by, title, column, found))
    return tuple(lists)


async def page_data(repo: Repository, banner: Banner | None, period: Period) -> PageData | None:
    """Figures, chart and lists of one banner, or of all when ``banner`` is ``None``."""
    banner_id = None if banner is None else banner.id
    totals = await repo.range_totals(banner_id, period.start, period.end)
    before = await repo.range_totals(banner_id, *period.previous)
    series = await repo.traffic_series(banner_id, period.start, period.end, period.interval)
    if totals is None or before is None or series is None:
        return None  # the banner was deleted while the page was built
    top = None
    if banner is None:
        top = await repo.top_banners_in_range(period.start, period.end, TOP_LIMIT, "valid")
    return _assemble(
        banner, period, totals, before, series, top, await breakdown_lists(repo, banner_id, period)
    )


async def filtered_page_data(
    explorer: Explorer, banner: Banner | None, period: Period, f: ClickFilter
) -> PageData | None:
    """The same page under filters: every figure, the chart and every list narrowed.

    ``f`` already names the banner of a banner page. Fact filters count raw clicks
    (``Explorer``), so the page says when retention has dropped part of the range: all
    but the previous range's totals in one pass (``Explorer.overview``).
    """
    if not f.on_facts:  # a banner alone: the rollups, figure by figure
        return await _banner_filtered(explorer, banner, period, f)
    before = await explorer.range_totals(f, *period.previous)
    found = await explorer.overview(
        f,
        period.start,
        period.end,
        period.interval,
        [by for by, _, _ in BREAKDOWNS],
        TOP_LIMIT if banner is None else None,
        BREAKDOWN_LIMIT,
        "valid",
    )
    if before is None or found is None:
        return None
    lists = tuple(
        _as_list(by, title, column, b)
        for (by, title, column), b in zip(BREAKDOWNS, found.breakdowns, strict=True)
    )
    data = _assemble(banner, period, found.totals, before, found.series, found.top, lists)
    return replace(data, incomplete_before=found.totals.incomplete_before)


async def _banner_filtered(
    explorer: Explorer, banner: Banner | None, period: Period, f: ClickFilter
) -> PageData | None:
    totals = await explorer.range_totals(f, period.start, period.end)
    before = await explorer.range_totals(f, *period.previous)
    series = await explorer.traffic_series(f, period.start, period.end, period.interval)
    if totals is None or before is None or series is None:
        return None
    top = None
    if banner is None:
        top = await explorer.top_banners(f, period.start, period.end, TOP_LIMIT, "valid")
    lists = []
    for by, title, column in BREAKDOWNS:
        found = await explorer.breakdown(f, by, period.start, period.end, "valid", BREAKDOWN_LIMIT)
        if found is None:
            return None
        lists.append(_as_list(by, title, column, found))
    data = _assemble(banner, period, totals, before, series, top, tuple(lists))
    return replace(data, incomplete_before=totals.incomplete_before)


def _assemble(
    banner: Banner | None,
    period: Period,
    totals: RangeTotals,
    before: RangeTotals,
    series: TrafficSeries,
    top: TopBanners | None,
    lists: tuple[BreakdownList, ...],
) -> PageData:
    return PageData(
        period=period,
        totals=totals,
        figures=key_figures(totals, before),
        # The overview's chart sits beside the top banners; a banner's spans the page.
        chart=bar_chart(series.points, series.interval, WIDE if banner is None else FULL),
        compact_chart=bar_chart(series.points, series.interval, COMPACT),
        rows=_rows(series),
        top=top,
        breakdowns=lists,
    )
