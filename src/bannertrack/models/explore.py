"""What the dashboard reads beyond the range figures: the banner table and the live view.

Values of the ``Explorer`` door (``repository.Explorer``), frozen like every value the
service hands out; the SQL is in ``db/explore_queries.py`` and ``db/filtered_queries.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from bannertrack.models.banners import Banner
from bannertrack.models.stats import Breakdown, RangeTotals, TopBanners, TrafficSeries

BannerSort = Literal["clicks", "ctr", "name", "created"]
BANNER_SORTS: tuple[BannerSort, ...] = ("clicks", "ctr", "name", "created")
BannerStatus = Literal["active", "paused", "scheduled", "ended"]
BANNER_STATUSES: tuple[BannerStatus, ...] = ("active", "paused", "scheduled", "ended")


class BannerRow(msgspec.Struct, frozen=True, kw_only=True):
    """One banner with its all-time figures (valid clicks, impressions, CTR)."""

    banner: Banner
    status: BannerStatus
    total_clicks: int
    valid_clicks: int
    impressions: int
    ctr: float | None


class BannerTable(msgspec.Struct, frozen=True, kw_only=True):
    items: tuple[BannerRow, ...]
    total: int  # matching the search and status, on every page
    offset: int
    limit: int


class LiveMinute(msgspec.Struct, frozen=True, kw_only=True):
    minute: datetime
    valid_clicks: int
    total_clicks: int


class LiveClick(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    banner_id: int
    occurred_at: datetime
    referrer: str | None
    country: str | None
    valid: bool


class LiveView(msgspec.Struct, frozen=True, kw_only=True):
    """The last minutes of every banner: clicks per minute and the newest clicks."""

    since: datetime
    now: datetime
    minutes: tuple[LiveMinute, ...]
    latest: tuple[LiveClick, ...]


class FilteredOverview(msgspec.Struct, frozen=True, kw_only=True):
    """A range's page under a click-fact filter, read in one pass (``Explorer.overview``).

    Each part equals what ``Explorer``'s per-figure call would return for the same filter
    and range; ``breakdowns`` in the order asked for, each over whole UTC days.
    """

    totals: RangeTotals
    series: TrafficSeries
    top: TopBanners | None  # None when not asked for (a banner's own page)
    breakdowns: tuple[Breakdown, ...]
