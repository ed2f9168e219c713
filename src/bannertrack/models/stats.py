"""What the service counts: a banner's figures, rankings, series, breakdowns, range
totals, and which clicks a range read counts (``ClickFilter``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

import msgspec

from bannertrack.models.banners import Banner
from bannertrack.models.clicks import Dimension

Interval = Literal["minute", "hour", "day"]
# What a ranking or a series counts: every recorded click, or only the valid ones.
CountKind = Literal["total", "valid"]
# What a breakdown counts: clicks (every one, or the valid ones), or the conversions
# attributed to clicks, grouped by the converting click's facts.
BreakdownCount = Literal["total", "valid", "conversions"]


class ClickStats(msgspec.Struct, frozen=True, kw_only=True):
    banner_id: int
    total_clicks: int
    clicks_last_hour: int
    clicks_last_24h: int
    first_click_at: datetime | None
    last_click_at: datetime | None
    # Counts a marketer can trust: total = valid + bot + repeat (a bot is never also
    # counted as a repeat). ctr = valid / impressions, null before the first impression.
    valid_clicks: int = 0
    bot_clicks: int = 0
    repeat_clicks: int = 0
    impressions: int = 0
    ctr: float | None = None
    # Conversions attributed to the banner's clicks; rate = conversions / valid clicks,
    # null before the first valid click; revenue: a decimal string per ISO 4217 currency.
    conversions: int = 0
    conversion_rate: float | None = None
    revenue: Mapping[str, str] = msgspec.field(default_factory=dict)


def conversion_rate(conversions: int, valid_clicks: int) -> float | None:
    return conversions / valid_clicks if valid_clicks > 0 else None


def click_through_rate(valid_clicks: int, impressions: int) -> float | None:
    return valid_clicks / impressions if impressions > 0 else None


def with_impressions(stats: ClickStats, impressions: int) -> ClickStats:
    """``stats`` with a newer impression count (and the ctr that goes with it)."""
    return msgspec.structs.replace(
        stats,
        impressions=impressions,
        ctr=click_through_rate(stats.valid_clicks, impressions),
    )


class BannerWithStats(msgspec.Struct, frozen=True, kw_only=True):
    banner: Banner
    stats: ClickStats


class TopBanner(msgspec.Struct, frozen=True, kw_only=True):
    banner: Banner
    clicks: int


class TopBanners(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    limit: int
    items: tuple[TopBanner, ...]
    incomplete_before: datetime | None = None  # as in RangeTotals (range reads only)


class SeriesPoint(msgspec.Struct, frozen=True, kw_only=True):
    ts: datetime
    clicks: int


class Series(msgspec.Struct, frozen=True, kw_only=True, rename={"from_": "from"}):
    banner_id: int
    from_: datetime
    to: datetime
    interval: Interval
    points: tuple[SeriesPoint, ...]


class BreakdownItem(msgspec.Struct, frozen=True, kw_only=True):
    value: str
    clicks: int  # what the breakdown counts: clicks, or conversions with count=conversions


class Breakdown(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, rename={"from_": "from"}
):
    """Clicks of one banner (``banner_id`` null: all banners) grouped by one dimension.

    ``items`` are the ``limit`` values with most clicks (ties by value); ``other`` sums the
    rest, including what ingest folded into "(other)". "(none)" counts clicks without a
    value (no referrer, unknown country, clicks from before the dimension existed).
    """

    banner_id: int | None
    by: Dimension
    from_: datetime
    to: datetime
    items: tuple[BreakdownItem, ...]
    other: int
    incomplete_before: datetime | None = None  # as in RangeTotals


class RangeTotals(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, rename={"from_": "from"}
):
    """Counts of one banner (or, with ``banner_id`` null, of all) within a time range.

    Read from the per-minute rollups: every minute that overlaps ``[from, to)`` counts
    whole, so a range that starts or ends inside a minute includes that minute.
    """

    banner_id: int | None
    from_: datetime
    to: datetime
    total_clicks: int
    valid_clicks: int
    bot_clicks: int
    repeat_clicks: int
    impressions: int | None  # null when filtered by a click fact: impressions carry none
    ctr: float | None
    # Conversions credited to the range's clicks, null when filtered by a click fact (the
    # conversion rollups are not kept per fact combination), as impressions.
    conversions: int | None
    conversion_rate: float | None
    revenue: Mapping[str, str] | None
    # Set when the figures are filtered (counted from raw clicks) and the range starts
    # before the oldest raw click retention keeps: clicks before it are missing.
    incomplete_before: datetime | None = None


class TrafficPoint(msgspec.Struct, frozen=True, kw_only=True):
    """One bucket of a traffic series: valid clicks apart from those set apart."""

    ts: datetime
    valid_clicks: int
    bot_clicks: int
    repeat_clicks: int
    impressions: int | None  # null when filtered by a click fact


class TrafficSeries(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, rename={"from_": "from"}
):
    banner_id: int | None
    from_: datetime
    to: datetime
    interval: Interval
    points: tuple[TrafficPoint, ...]
    incomplete_before: datetime | None = None  # as in RangeTotals


class ClickFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which clicks a range read counts: one banner and/or values of click facts.

    ``values`` holds (dimension, value) pairs, at most one per dimension, in
    ``DIMENSIONS`` order; the value ``"(none)"`` matches clicks without one. Filtering by
    a click fact reads raw clicks (kept ``retention_days``); by a banner alone, the rollups.
    """

    banner_id: int | None = None
    values: tuple[tuple[Dimension, str], ...] = ()

    @property
    def on_facts(self) -> bool:
        return bool(self.values)

    @property
    def empty(self) -> bool:
        return self.banner_id is None and not self.values


NO_FILTER = ClickFilter()
