"""The cache's key schema for banner data: every key, namespace and cached endpoint, once.

``CachedRepository`` builds its keys here, the admin API lists ``NAMESPACES`` in its
statistics and accepts them for invalidation, and the CLI's cache test measures
``ENDPOINTS``. The cache engine knows nothing of this: it only counts statistics per
namespace, the part of a key before its first ``:``. A new cached read adds its
namespace and key here and nowhere else.

    banner:{id}                banner_keys, updated_keys
    click_stats:{id}           banner_keys, clicked_keys
    banner_stats:{id}          banner_keys, updated_keys, clicked_keys
    top_banners:{limit}        count=total (the original key, docs/caching.md)
    top_banners:{limit}:{count}  any other count; under the same prefix
    breakdown:{id|all}:{by}:{count}:{limit}:{from day}:{to day}
                               breakdown_prefix(id) per banner, breakdown_prefixes;
                               count=conversions too (a conversion drops them as a click)
    placement:{id}             a placement's serve candidates: placement_key; every
                               banner write drops PLACEMENT_PREFIX (a banner may sit in
                               any placement), a placement's own writes its key
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final, Literal, NamedTuple, get_args

from bannertrack.models import BreakdownCount, CountKind, Dimension

BANNER: Final = "banner"
CLICK_STATS: Final = "click_stats"
BANNER_STATS: Final = "banner_stats"
TOP_BANNERS: Final = "top_banners"
BREAKDOWN: Final = "breakdown"
PLACEMENT: Final = "placement"

Namespace = Literal[
    "banner", "click_stats", "banner_stats", "top_banners", "breakdown", "placement"
]
"""A namespace as the API takes it (an enum in the OpenAPI document)."""

NAMESPACES: Final[tuple[str, ...]] = (
    BANNER,
    CLICK_STATS,
    BANNER_STATS,
    TOP_BANNERS,
    BREAKDOWN,
    PLACEMENT,
)
assert get_args(Namespace) == NAMESPACES, "Namespace and NAMESPACES must name the same set"
"""Every namespace the service caches; the statistics show each, used or not."""


def prefix(namespace: str) -> str:
    """The prefix that invalidates a whole namespace, and nothing else."""
    return f"{namespace}:"


TOP_BANNERS_PREFIX: Final = prefix(TOP_BANNERS)
"""Every top list: any write that changes a banner or its counts drops all of them."""


PLACEMENT_PREFIX: Final = prefix(PLACEMENT)
"""Every placement's candidates: a banner's update or delete drops all of them."""


def placement_key(placement_id: int) -> str:
    return f"{PLACEMENT}:{placement_id}"


def banner_key(banner_id: int) -> str:
    return f"{BANNER}:{banner_id}"


def click_stats_key(banner_id: int) -> str:
    return f"{CLICK_STATS}:{banner_id}"


def banner_stats_key(banner_id: int) -> str:
    return f"{BANNER_STATS}:{banner_id}"


def top_banners_key(limit: int, count: CountKind = "total") -> str:
    # count=total keeps the original key; other counts stay under the same prefix.
    base = f"{TOP_BANNERS}:{limit}"
    return base if count == "total" else f"{base}:{count}"


def banner_keys(banner_id: int) -> tuple[str, str, str]:
    """Every key that holds data of one banner (a delete drops them all)."""
    return (banner_key(banner_id), click_stats_key(banner_id), banner_stats_key(banner_id))


def updated_keys(banner_id: int) -> tuple[str, str]:
    """What an update of a banner makes stale, besides every top list."""
    return (banner_key(banner_id), banner_stats_key(banner_id))


def clicked_keys(banner_id: int) -> tuple[str, str]:
    """What a click on a banner makes stale, besides every top list."""
    return (click_stats_key(banner_id), banner_stats_key(banner_id))


def breakdown_prefix(banner_id: int | None) -> str:
    """Every breakdown of one banner, or (``None``) of the overview across banners."""
    return f"{BREAKDOWN}:{'all' if banner_id is None else banner_id}:"


def breakdown_key(
    banner_id: int | None,
    by: Dimension,
    count: BreakdownCount,
    limit: int,
    first: datetime,
    stop: datetime,
) -> str:
    """``first`` and ``stop`` are whole UTC days, so "the last 30 days" is one key a day."""
    return f"{breakdown_prefix(banner_id)}{by}:{count}:{limit}:{first:%Y-%m-%d}:{stop:%Y-%m-%d}"


def breakdown_prefixes(banner_ids: Iterable[int]) -> tuple[str, ...]:
    """The breakdowns a click on these banners changes: theirs and the overview."""
    return (*(breakdown_prefix(b) for b in banner_ids), breakdown_prefix(None))


class Endpoint(NamedTuple):
    """A cached read as a client sees it: its path, and the namespace that counts it."""

    path: str  # ``{id}`` stands for a banner id
    namespace: str


ENDPOINTS: Final[dict[str, Endpoint]] = {
    "banner": Endpoint("/api/v1/banners/{id}", BANNER),
    "stats": Endpoint("/api/v1/banners/{id}/stats", CLICK_STATS),
    "with-stats": Endpoint("/api/v1/banners/{id}/with-stats", BANNER_STATS),
    "top": Endpoint("/api/v1/banners/top?limit=10", TOP_BANNERS),
}
"""The cached endpoints ``bannertrack cache test`` measures, by the name it prints."""
