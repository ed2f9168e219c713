"""The seam between the service and its storage: the ``Repository`` protocol.

``SqlRepository`` implements ``Repository`` against the database; ``CachedRepository``
implements it by wrapping another ``Repository``. The HTTP layer and the CLI only see
this protocol, so they never know whether a cache answered.

Lookups of one thing return ``None`` when it does not exist rather than raising: a
cached ``None`` is a legitimate (negative) cache entry, and the caller decides whether
absence is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from bannertrack.conversions.values import (
    ConversionIn,
    ConversionTotals,
    Recorded,
)
from bannertrack.models import (
    Banner,
    BannerCreate,
    BannerPage,
    BannerUpdate,
    BannerWithStats,
    Breakdown,
    BreakdownCount,
    ClickIn,
    ClickStats,
    CountKind,
    Dimension,
    ImpressionCount,
    Interval,
    RangeTotals,
    RecordedClick,
    Series,
    TopBanners,
    TrafficSeries,
)


class Repository(Protocol):
    async def create_banner(self, data: BannerCreate) -> Banner: ...

    async def get_banner(self, banner_id: int) -> Banner | None: ...

    async def list_banners(self, offset: int, limit: int) -> BannerPage: ...

    async def update_banner(self, banner_id: int, data: BannerUpdate) -> Banner | None: ...

    async def delete_banner(self, banner_id: int) -> bool: ...

    async def record_clicks(self, clicks: Sequence[ClickIn]) -> list[RecordedClick | None]:
        """Store a batch in one transaction; ``None`` marks a click on a missing banner.

        When this returns, every non-``None`` click is committed (durable). Whether a
        click is a repeat is decided here, atomically with the commit, against every
        earlier click of its visitor on its banner, from any instance.
        """
        ...

    async def record_impressions(self, counts: Sequence[ImpressionCount]) -> None:
        """Add per-minute impression counts in one transaction; missing banners are skipped."""
        ...

    async def impressions(self, banner_ids: Sequence[int]) -> dict[int, int]:
        """Impression totals of the banners that exist among ``banner_ids``."""
        ...

    async def click_stats(self, banner_id: int) -> ClickStats | None: ...

    async def banner_with_stats(self, banner_id: int) -> BannerWithStats | None: ...

    async def top_banners(self, limit: int, count: CountKind = "total") -> TopBanners: ...

    async def click_series(
        self,
        banner_id: int,
        start: datetime,
        end: datetime,
        interval: Interval,
        count: CountKind = "total",
    ) -> Series | None: ...

    async def breakdown(
        self,
        banner_id: int | None,
        by: Dimension,
        start: datetime,
        end: datetime,
        count: BreakdownCount = "total",
        limit: int = 10,
    ) -> Breakdown | None:
        """Clicks of a banner (``None``: of all banners) by one dimension, per whole UTC day;
        with ``count="conversions"`` the conversions, by the converting click's facts.

        ``None`` when the banner does not exist. The range widens to whole days; the
        answer's ``from``/``to`` say which.
        """
        ...

    async def record_conversion(self, data: ConversionIn, window: timedelta) -> Recorded:
        """Store a conversion and its rollups in one transaction, once per (click id, goal).

        A second report of the same pair answers the first (``created`` false) and counts
        nothing, also when two race. Raises ``NotFoundError`` for an unknown click id and
        ``OutsideWindowError`` when the click is outside ``window`` (``conversions.rules``).
        """
        ...

    async def conversion_totals(
        self, banner_id: int | None, placement_id: int | None, start: datetime, end: datetime
    ) -> ConversionTotals | None:
        """Conversions in ``[start, end)`` (whole minutes) of a banner and/or placement, in
        all and per goal; ``None`` if the banner is missing."""
        ...

    async def range_totals(
        self, banner_id: int | None, start: datetime, end: datetime
    ) -> RangeTotals | None:
        """Counts within ``[start, end)`` of one banner (``None`` if it is missing) or,
        with ``banner_id=None``, of every banner; read from the per-minute rollups."""
        ...

    async def traffic_series(
        self, banner_id: int | None, start: datetime, end: datetime, interval: Interval
    ) -> TrafficSeries | None:
        """Valid, bot and repeat clicks and impressions per bucket (all banners if
        ``banner_id`` is ``None``); ``None`` if the banner is missing."""
        ...

    async def top_banners_in_range(
        self, start: datetime, end: datetime, limit: int, count: CountKind = "total"
    ) -> TopBanners:
        """The ``limit`` banners with most clicks within ``[start, end)``."""
        ...

    async def ping(self) -> None:
        """Raise ``DatabaseUnavailableError`` when the storage cannot answer."""
        ...

    async def close(self) -> None: ...


Notify = tuple[str, str]
"""A PostgreSQL NOTIFY: channel and payload."""


@runtime_checkable
class NotifyingClicks(Protocol):
    """A repository whose click batch can send a NOTIFY in its own transaction, so it
    reaches the other instances with the commit (``Bus.carry``)."""

    @property
    def carries_notify(self) -> bool:
        """Whether ``record_clicks_notifying`` can send it (PostgreSQL only)."""
        ...

    async def record_clicks_notifying(
        self, clicks: Sequence[ClickIn], notify: Notify
    ) -> list[RecordedClick | None]:
        """``Repository.record_clicks``, with ``notify`` sent in the batch's transaction."""
        ...
