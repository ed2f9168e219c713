"""What the dashboard reads beyond the range figures: the banner table and the live view.

Values of the ``Explorer`` door (``repository.Explorer``), frozen like every value the
service hands out; the SQL is in ``db/explore_queries.py`` and ``db/filtered_queries.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from bannertrack.models import Banner

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
