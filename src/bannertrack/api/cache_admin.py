"""/api/v1/cache: statistics for everyone, clearing, warming and invalidation for admins."""

from __future__ import annotations

import time
from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import PathParameter

from bannertrack.api.auth import admin_guard
from bannertrack.api.openapi import ADMIN, errors
from bannertrack.bootstrap.web import BannerId, Injected
from bannertrack.cache import STATS_FIELDS, CacheStats, NamespaceStats
from bannertrack.caching.keys import NAMESPACES, Namespace
from bannertrack.errors import ConflictError
from bannertrack.repository import CacheAdmin


class CacheDisabledError(ConflictError):
    code = "cache_disabled"


def _enabled(cache_admin: Injected[CacheAdmin | None]) -> CacheAdmin:
    if cache_admin is None:
        raise CacheDisabledError("the cache is switched off (BANNERTRACK_CACHE_ENABLED=false)")
    return cache_admin


def _percent(rate: float) -> str:
    return f"{rate * 100:.2f}%"


_UNUSED = NamespaceStats(**dict.fromkeys(STATS_FIELDS, 0))


def _row(stats: CacheStats | NamespaceStats) -> dict[str, Any]:
    """One statistics row, named by ``STATS_FIELDS``; the rate as a percentage string."""
    row: dict[str, Any] = {name: getattr(stats, name) for name in STATS_FIELDS}
    row["hit_rate"] = _percent(stats.hit_rate)
    return row


def stats_body(stats: CacheStats) -> dict[str, Any]:
    namespaces = {ns: _row(s) for ns, s in stats.namespaces.items()}
    for ns in NAMESPACES:  # every documented namespace appears, used or not
        namespaces.setdefault(ns, _row(_UNUSED))
    return {
        "enabled": True,
        **_row(stats),
        "max_entries": stats.max_entries,
        "namespaces": namespaces,
    }


class CacheController(Controller):
    path = "/api/v1/cache"
    tags = ["cache"]

    @get("/stats")
    async def stats(self, cache_admin: Injected[CacheAdmin | None]) -> dict[str, Any]:
        if cache_admin is None:
            return {"enabled": False}
        return stats_body(cache_admin.stats())

    @post(
        "/clear",
        guards=[admin_guard],
        status_code=200,
        security=ADMIN,
        responses=errors(401, 403, 409, 503),
    )
    async def clear(self, cache_admin: Injected[CacheAdmin | None]) -> dict[str, Any]:
        return {"cleared": await _enabled(cache_admin).clear()}

    @post(
        "/warm",
        guards=[admin_guard],
        status_code=200,
        security=ADMIN,
        responses=errors(401, 403, 409, 503),
    )
    async def warm(self, cache_admin: Injected[CacheAdmin | None]) -> dict[str, Any]:
        started = time.perf_counter()
        loaded = await _enabled(cache_admin).warm()
        return {"loaded": loaded, "seconds": round(time.perf_counter() - started, 4)}

    @post(
        "/banner/{banner_id:int}/invalidate",
        guards=[admin_guard],
        status_code=200,
        security=ADMIN,
        responses=errors(400, 401, 403, 404, 409, 503),
    )
    async def invalidate_banner(
        self, cache_admin: Injected[CacheAdmin | None], banner_id: BannerId
    ) -> dict[str, Any]:
        removed = await _enabled(cache_admin).invalidate_banner(banner_id)
        return {"banner_id": banner_id, "removed": removed}

    @post(
        "/namespace/{namespace:str}/invalidate",
        guards=[admin_guard],
        status_code=200,
        security=ADMIN,
        responses=errors(400, 401, 403, 404, 409, 503),
    )
    async def invalidate_namespace(
        self,
        cache_admin: Injected[CacheAdmin | None],
        namespace: Annotated[Namespace, PathParameter(description="The namespace to drop")],
    ) -> dict[str, Any]:
        removed = await _enabled(cache_admin).invalidate_namespace(namespace)
        return {"namespace": namespace, "removed": removed}
