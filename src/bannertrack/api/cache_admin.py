"""/api/v1/cache: statistics for everyone, clearing, warming and invalidation for admins."""

from __future__ import annotations

import os
import time
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.params import PathParameter

from bannertrack.api.auth import admin_guard
from bannertrack.api.cache_stats import CacheStatsBody, stats_body
from bannertrack.api.openapi import ADMIN, errors
from bannertrack.bootstrap.web import BannerId, Injected
from bannertrack.bootstrap.workers import WorkerBoard
from bannertrack.caching.keys import Namespace
from bannertrack.errors import ConflictError
from bannertrack.repository import CacheAdmin


class Cleared(msgspec.Struct, frozen=True, kw_only=True):
    cleared: int  # entries dropped


class Warmed(msgspec.Struct, frozen=True, kw_only=True):
    loaded: int  # entries loaded
    seconds: float


class BannerInvalidated(msgspec.Struct, frozen=True, kw_only=True):
    banner_id: int
    removed: int  # entries dropped: the banner's and every top list


class NamespaceInvalidated(msgspec.Struct, frozen=True, kw_only=True):
    namespace: Namespace
    removed: int


class CacheDisabledError(ConflictError):
    code = "cache_disabled"


def _enabled(cache_admin: Injected[CacheAdmin | None]) -> CacheAdmin:
    if cache_admin is None:
        raise CacheDisabledError("the cache is switched off (BANNERTRACK_CACHE_ENABLED=false)")
    return cache_admin


class CacheController(Controller):
    path = "/api/v1/cache"
    tags = ["cache"]

    @get("/stats")
    async def stats(
        self, cache_admin: Injected[CacheAdmin | None], workers: Injected[WorkerBoard | None]
    ) -> CacheStatsBody:
        """Every worker's cache figures and their sum (see ``api/cache_stats.py``)."""
        own = cache_admin.stats() if cache_admin is not None else None
        others = await workers.others() if workers is not None else []
        now = time.time()
        rows = [(os.getpid(), 0.0, own)]
        rows += [(f.pid, max(0.0, now - f.written_at), f.cache) for f in others]
        return stats_body(cache_admin is not None, os.getpid(), rows)

    @post(
        "/clear",
        guards=[admin_guard],
        status_code=200,
        security=ADMIN,
        responses=errors(401, 403, 409, 503),
    )
    async def clear(self, cache_admin: Injected[CacheAdmin | None]) -> Cleared:
        return Cleared(cleared=await _enabled(cache_admin).clear())

    @post(
        "/warm",
        guards=[admin_guard],
        status_code=200,
        security=ADMIN,
        responses=errors(401, 403, 409, 503),
    )
    async def warm(self, cache_admin: Injected[CacheAdmin | None]) -> Warmed:
        started = time.perf_counter()
        loaded = await _enabled(cache_admin).warm()
        return Warmed(loaded=loaded, seconds=round(time.perf_counter() - started, 4))

    @post(
        "/banner/{banner_id:int}/invalidate",
        guards=[admin_guard],
        status_code=200,
        security=ADMIN,
        responses=errors(400, 401, 403, 404, 409, 503),
    )
    async def invalidate_banner(
        self, cache_admin: Injected[CacheAdmin | None], banner_id: BannerId
    ) -> BannerInvalidated:
        removed = await _enabled(cache_admin).invalidate_banner(banner_id)
        return BannerInvalidated(banner_id=banner_id, removed=removed)

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
    ) -> NamespaceInvalidated:
        removed = await _enabled(cache_admin).invalidate_namespace(namespace)
        return NamespaceInvalidated(namespace=namespace, removed=removed)
