"""The data of a dashboard page, gathered from the ``Repository`` for one period.

The page is server-rendered from this, so every number is in the HTML and needs no
script.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bannertrack.dashboard.charts import COMPACT, FULL, WIDE, BarChart, bar_chart, bucket_label
from bannertrack.dashboard.figures import Figure, key_figures
from bannertrack.dashboard.periods import PRESETS, Period
from bannertrack.models import Banner, Dimension, RangeTotals, TopBanners, TrafficSeries
from bannertrack.repository import Repository

TOP_LIMIT = 10
BREAKDOWN_LIMIT = 8
# The breakdown lists the pages show, in order: (dimension, card title, column heading).
BREAKDOWNS: tuple[tuple[Dimension, str, str], ...] = (
    ("referrer", "Referrers", "Referrer"),
    ("utm_campaign", "Campaigns", "Campaign"),
    ("country", "Countries", "Country"),
    ("device", "Devices", "Device"),
    ("browser", "Browsers", "Browser"),
)


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    ts: datetime
    valid: int
    bot: int
    repeat: int
    impressions: int


@dataclass(frozen=True, slots=True)
class BreakdownList:
    by: str
    title: str
    column: str
    items: tuple[tuple[str, int], ...]
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
        lists.append(
            BreakdownList(
                by=by,
                title=title,
                column=column,
                items=tuple((i.value, i.clicks) for i in found.items),
                other=found.other,
            )
        )
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
    return PageData(
        period=period,
        totals=totals,
        figures=key_figures(totals, before),
        # The overview's chart sits beside the top banners; a banner's spans the page.
        chart=bar_chart(series.points, series.interval, WIDE if banner is None else FULL),
        compact_chart=bar_chart(series.points, series.interval, COMPACT),
        rows=_rows(series),
        top=top,
        breakdowns=await breakdown_lists(repo, banner_id, period),
    )
