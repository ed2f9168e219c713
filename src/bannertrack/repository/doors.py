"""The narrow doors beside the ``Repository``: each consumer that needs something else
sees only the few methods it uses, never the concrete class.

Export reads a ``ClickArchive``, retention and the visitor salts use ``Housekeeping``,
placements a ``PlacementStore``, the cache endpoints a ``CacheAdmin``, the dashboard an
``Explorer``, the health check a ``StorageProbe`` and the spool's replay a
``ReplayTarget``. ``SqlRepository`` implements the stores, ``CachedRepository`` the
cache admin, and ``bootstrap`` builds the probe; it hands each consumer its door.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol, runtime_checkable

from bannertrack.cache import CacheStats
from bannertrack.conversions.values import (
    ExportedConversion,
)
from bannertrack.models import (
    Banner,
    Breakdown,
    Candidates,
    ClickFilter,
    ClickIn,
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
    SealedSalt,
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
