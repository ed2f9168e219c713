"""Two instances on one PostgreSQL, each with its own cache, joined by the PostgreSQL bus:
a banner paused through one stops being served by the other within the bus's delivery,
and (the negative control) without the bus the other keeps serving it from its cache."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from tests.support.services import PostgresFactory
from tests.support.waiting import wait_until

from bannertrack.cache import MemoryCache, TieredCache
from bannertrack.caching.bus import PostgresBus, apply_to, asyncpg_connect_args
from bannertrack.caching.cached_repository import CachedRepository
from bannertrack.caching.placements import CachedPlacements
from bannertrack.clicks.impressions import ImpressionBatcher
from bannertrack.clicks.privacy import VisitorHasher
from bannertrack.clicks.recording import Visit
from bannertrack.clicks.signing import ClickSigner
from bannertrack.db.repository import SqlRepository
from bannertrack.db.urls import async_url
from bannertrack.models import BannerCreate, BannerUpdate, PlacementBanner, PlacementCreate
from bannertrack.placements.serve import Server

FAST = {"heartbeat": 0.2, "backoff_max": 0.2, "connect_wait": 3.0}
VISIT = Visit("", False, "8.8.8.8", None, "Mozilla/5.0 (X11; Linux x86_64) Firefox/120", None)


@dataclass
class Instance:
    sql: SqlRepository
    cached: CachedRepository
    placements: CachedPlacements
    server: Server
    bus: PostgresBus | None


@pytest.fixture
async def database(postgres: PostgresFactory) -> AsyncIterator[tuple[str, dict[str, object]]]:
    url = postgres.create()
    engine = create_async_engine(async_url(url))
    yield url, asyncpg_connect_args(engine)
    await engine.dispose()
    postgres.drop(url)


async def instance(url: str, connect: dict[str, object] | None) -> Instance:
    sql = SqlRepository.from_url(url)
    cache = TieredCache(MemoryCache(), None)
    bus = PostgresBus(connect, apply_to(cache), lambda up: None, **FAST) if connect else None
    if bus is not None:
        await bus.start()
    cached = CachedRepository(sql, cache, on_invalidate=bus.publish if bus else None)
    placements = CachedPlacements(sql, cache, cached.invalidate)
    server = Server(
        candidates=placements.candidates,
        impressions=ImpressionBatcher(cached),
        hasher=VisitorHasher(),
        signer=ClickSigner(b"s" * 32),
        trusted_proxies=(),
        rng=random.Random(3),
    )
    return Instance(sql, cached, placements, server, bus)


async def close(*instances: Instance) -> None:
    for i in instances:
        if i.bus is not None:
            await i.bus.stop()
        await i.sql.close()


async def _setup(a: Instance, b: Instance) -> tuple[int, int, int]:
    paused = await a.cached.create_banner(
        BannerCreate(name="p", image_url="https://c.example/p.png", target_url="https://t.example/")
    )
    kept = await a.cached.create_banner(
        BannerCreate(name="k", image_url="https://c.example/k.png", target_url="https://t.example/")
    )
    placement = await a.placements.create_placement(PlacementCreate(name="top"))
    weights = [
        PlacementBanner(banner_id=paused.id, weight=1000),
        PlacementBanner(banner_id=kept.id, weight=1),
    ]
    await a.placements.set_placement_banners(placement.id, weights)
    return paused.id, kept.id, placement.id


async def _shows(node: Instance, placement: int, banner: int, n: int = 50) -> bool:
    for _ in range(n):
        served = await node.server.serve(placement, VISIT)
        if served is not None and served.banner.id == banner:
            return True
    return False


async def test_a_pause_reaches_the_other_instance_through_the_bus(
    database: tuple[str, dict[str, object]],
) -> None:
    url, connect = database
    a, b = await instance(url, connect), await instance(url, connect)
    try:
        paused, kept, placement = await _setup(a, b)
        assert await _shows(b, placement, paused)  # b's cache holds the candidates now
        assert a.bus is not None and b.bus is not None
        await a.cached.update_banner(paused, BannerUpdate(active=False))
        assert not await _shows(a, placement, paused)  # here: at once, the write returned
        # Every message a sent, the pause's included, applied on b: the bus's bound.
        sent = a.bus.published
        await wait_until(lambda: b.bus is not None and b.bus.applied >= sent)
        assert not await _shows(b, placement, paused, n=200)
        assert await _shows(b, placement, kept)
        assert b.bus is not None and b.bus.stats().delay_samples >= 1
    finally:
        await close(a, b)


async def test_without_the_bus_the_other_instance_keeps_serving_it(
    database: tuple[str, dict[str, object]],
) -> None:
    """Negative control: the same pause with no bus leaves b's cached candidates in place."""
    url, _ = database
    a, b = await instance(url, None), await instance(url, None)
    try:
        paused, kept, placement = await _setup(a, b)
        assert await _shows(b, placement, paused)
        await a.cached.update_banner(paused, BannerUpdate(active=False))
        assert await _shows(a, placement, kept) and not await _shows(a, placement, paused)
        assert await _shows(b, placement, paused)  # stale on b until its TTL
    finally:
        await close(a, b)
