"""The seam between the service and its storage, and the narrow doors beside it.

``SqlRepository`` implements ``Repository`` against the database; ``CachedRepository``
implements it by wrapping another ``Repository``. The HTTP layer and the CLI only see
this protocol, so they never know whether a cache answered.

A consumer that needs something else sees only the few methods it uses, never the
concrete class: export reads a ``ClickArchive``, retention and the visitor salts use
``Housekeeping``, the cache endpoints a ``CacheAdmin`` and the health check a
``StorageProbe``. ``SqlRepository`` implements the first two, ``CachedRepository`` the
cache admin, and ``bootstrap`` builds the probe; it hands each consumer its door.

Lookups of one thing return ``None`` when it does not exist rather than raising: a
cached ``None`` is a legitimate (negative) cache entry, and the caller decides whether
absence is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Protocol, runtime_checkable

from bannertrack.cache import CacheStats
from bannertrack.conversions.values import (
    ConversionIn,
    ConversionTotals,
    ExportedConversion,
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
    Candidates,
    ClickFilter,
    ClickIn,
    ClickStats,
    CountKind,
    Dimension,
    ExportedClick,
    ImpressionCount,
    Interval,
    Placement,
    PlacementBanner,
    PlacementBanners,
    PlacementCreate,
    PlacementPage,
    PlacementStats,
    PlacementUpdate,
    RangeTotals,
    RecordedClick,
    SealedSalt,
    Series,
    TopBanners,
    TrafficSeries,
)
from bannertrack.models.explore import (
    BannerSort,
    BannerStatus,
    BannerTable,
    FilteredOverview,
    LiveView,
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


class ClickArchive(Protocol):
    """Raw clicks and conversions for export: what the CSV endpoints and
    ``export.csv_chunks`` read."""

    async def get_banner(self, banner_id: int) -> Banner | None: ...

    async def export_page(
        self,
        banner_id: int,
        start: datetime,
        end: datetime,
        after: tuple[datetime, int] | None,
        limit: int,
    ) -> Sequence[ExportedClick]:
        """Clicks in ``[start, end)`` ordered by (occurred_at, id), after the key ``after``."""
        ...

    async def clicks_in_range(self, banner_id: int, start: datetime, end: datetime) -> int:
        """An upper bound of the clicks in ``[start, end)``, cheap to read."""
        ...

    async def export_conversions(
        self,
        banner_id: int,
        start: datetime,
        end: datetime,
        after: tuple[datetime, int] | None,
        limit: int,
    ) -> Sequence[ExportedConversion]:
        """Conversions in ``[start, end)`` ordered by (occurred_at, id), after ``after``."""
        ...


class Housekeeping(Protocol):
    """Retention and the daily visitor salt: maintenance no request path needs."""

    async def banner_ids(self) -> list[int]: ...

    async def delete_clicks_before(self, banner_id: int, cutoff: datetime, limit: int) -> int:
        """Delete at most ``limit`` raw clicks of one banner older than ``cutoff``."""
        ...

    async def purge_visitors(self, older_than: datetime, limit: int) -> int:
        """Forget at most ``limit`` visitors whose dedup window ended before ``older_than``."""
        ...

    async def sealed_salt(self, day: date, offer: SealedSalt) -> SealedSalt:
        """The sealed salt of ``day`` (``offer`` if none is stored yet), the same for every
        instance; older salts are destroyed."""
        ...


class PlacementStore(Protocol):
    """Placements, their weighted banners and counts: the door the placement API, the
    serve and the dashboard use. ``SqlRepository`` implements it against the database,
    ``CachedPlacements`` (caching/placements.py) by caching ``candidates``.

    Lookups return ``None`` for a placement that does not exist, as ``Repository`` does.
    """

    async def create_placement(self, data: PlacementCreate) -> Placement: ...

    async def get_placement(self, placement_id: int) -> Placement | None: ...

    async def list_placements(self, offset: int, limit: int) -> PlacementPage: ...

    async def update_placement(
        self, placement_id: int, data: PlacementUpdate
    ) -> Placement | None: ...

    async def delete_placement(self, placement_id: int) -> bool:
        """Delete the placement, its banner list and its counts."""
        ...

    async def placement_banners(self, placement_id: int) -> PlacementBanners | None: ...

    async def set_placement_banners(
        self, placement_id: int, banners: Sequence[PlacementBanner]
    ) -> PlacementBanners | None:
        """Replace the placement's banners; ``InvalidInputError`` names unknown banner ids
        or one given twice."""
        ...

    async def candidates(self, placement_id: int) -> Candidates | None:
        """The placement and its active banners with their weights (what a serve picks
        from); ``None`` for an unknown placement."""
        ...

    async def placement_stats(
        self, placement_id: int, start: datetime, end: datetime
    ) -> PlacementStats | None:
        """Impressions and clicks of the placement within ``[start, end)`` from its
        per-minute rollup, per banner; ``None`` for an unknown placement."""
        ...


class CacheAdmin(Protocol):
    """What the cache endpoints may do: look, clear, warm, invalidate."""

    def stats(self) -> CacheStats: ...

    async def clear(self) -> int: ...

    async def warm(self) -> int: ...

    async def invalidate_banner(self, banner_id: int) -> int: ...

    async def invalidate_namespace(self, namespace: str) -> int:
        """Raise ``InvalidInputError`` for a namespace not in ``cache_keys.NAMESPACES``."""
        ...


class Explorer(Protocol):
    """What the dashboard and the filtered range API read beyond the ``Repository``:
    range figures under a ``ClickFilter``, the banner table and the live view (uncached)."""

    async def range_totals(
        self, f: ClickFilter, start: datetime, end: datetime
    ) -> RangeTotals | None:
        """``None`` when the filter's banner does not exist."""
        ...

    async def traffic_series(
        self, f: ClickFilter, start: datetime, end: datetime, interval: Interval
    ) -> TrafficSeries | None: ...

    async def top_banners(
        self, f: ClickFilter, start: datetime, end: datetime, limit: int, count: CountKind
    ) -> TopBanners: ...

    async def breakdown(
        self,
        f: ClickFilter,
        by: Dimension,
        start: datetime,
        end: datetime,
        count: CountKind,
        limit: int,
    ) -> Breakdown | None: ...

    async def overview(
        self,
        f: ClickFilter,
        start: datetime,
        end: datetime,
        interval: Interval,
        dims: Sequence[Dimension],
        top_limit: int | None,
        limit: int,
        count: CountKind,
    ) -> FilteredOverview | None:
        """What ``range_totals``, ``traffic_series``, ``top_banners`` (unless ``top_limit``
        is None) and ``breakdown`` per dimension return under a fact filter, in one read."""
        ...

    async def banner_table(
        self,
        search: str,
        status: BannerStatus | None,
        sort: BannerSort,
        offset: int,
        limit: int,
    ) -> BannerTable: ...

    async def live(self, minutes: int = 30, latest: int = 12) -> LiveView: ...


class StorageProbe(Protocol):
    """What the health check asks of the storage."""

    @property
    def dialect(self) -> str:
        """The database's kind, ``sqlite`` or ``postgresql``."""
        ...

    async def ping(self) -> None:
        """Raise ``DatabaseUnavailableError`` when the storage cannot answer."""
        ...

    async def write_error(self) -> str | None:
        """``None`` when the storage takes writes; else why not (a full disk, say)."""
        ...


@runtime_checkable
class ReplayTarget(Protocol):
    """Where the spool's replay stores batches: exactly once, keyed (``db/replay.py``)."""

    async def replay_clicks(
        self, groups: Sequence[tuple[str, Sequence[ClickIn]]], in_doubt: bool
    ) -> list[bool]:
        """Store spooled batches, each with its key, in one transaction; per batch, whether
        it was stored now (False: stored before). ``in_doubt`` takes one batch."""
        ...

    async def replay_impressions(self, key: str, counts: Sequence[ImpressionCount]) -> bool:
        """Store the counts with their key in one transaction; False: stored before."""
        ...

    async def ping(self) -> None: ...
