"""The banner from memory when PostgreSQL is gone: stale-if-error in the caching layer.

Real PostgreSQL behind a loopback proxy that the test cuts; the cache's clock is moved by
the test, so "past its TTL" needs no sleeping.
"""

from __future__ import annotations

import pytest
from tests.support.proxy import TcpProxy

from bannertrack.cache import MemoryCache
from bannertrack.caching.cached_repository import CachedRepository
from bannertrack.caching.policy import CachePolicy
from bannertrack.db.engine import DbTimeouts
from bannertrack.db.repository import SqlRepository
from bannertrack.errors import DatabaseUnavailableError
from bannertrack.models import BannerCreate, BannerUpdate
from bannertrack.outage import DatabaseState


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


BANNER = BannerCreate(name="a", image_url="https://a.example/i", target_url="https://a.example/")


async def _repos(
    url: str, stale_for: float
) -> tuple[CachedRepository, SqlRepository, Clock, DatabaseState]:
    clock = Clock()
    sql = SqlRepository.from_url(url, timeouts=DbTimeouts(connect=1, pool=1, statement=1))
    cache = MemoryCache(default_ttl=60, clock=clock, stale_for=stale_for)
    state = DatabaseState()
    return (
        CachedRepository(sql, cache, CachePolicy(banner_ttl=60), database=state),
        sql,
        clock,
        state,
    )


async def test_an_expired_banner_answers_while_postgres_is_gone(
    proxied_url: tuple[str, TcpProxy],
) -> None:
    url, proxy = proxied_url
    repo, sql, clock, state = await _repos(url, stale_for=86_400)
    try:
        held = await repo.create_banner(BANNER)
        other = await repo.create_banner(BANNER)
        assert await repo.get_banner(held.id) == held
        # The consistency promise while the database answers: the write returned, so the
        # next read sees it, never the entry it replaced.
        updated = await repo.update_banner(held.id, BannerUpdate(name="renamed"))
        assert await repo.get_banner(held.id) == updated
        clock.now += 61  # past the TTL: the database is asked again while it answers
        assert await repo.get_banner(held.id) == updated
        clock.now += 61

        proxy.stop()
        assert await repo.get_banner(held.id) == updated  # stale, not 503
        assert state.down
        with pytest.raises(DatabaseUnavailableError):  # never held: still fails
            await repo.get_banner(other.id)
        assert repo.cache.stats().size >= 1

        proxy.start()
        await repo.update_banner(held.id, BannerUpdate(name="again"))
        proxy.stop()
        # The update returned and dropped the entry, stale copy included: no old name.
        with pytest.raises(DatabaseUnavailableError):
            await repo.get_banner(held.id)
        proxy.start()
        again = await repo.get_banner(held.id)
        assert again is not None and again.name == "again" and not state.down
    finally:
        await sql.close()


async def test_negative_control_without_a_stale_window_the_read_fails(
    proxied_url: tuple[str, TcpProxy],
) -> None:
    url, proxy = proxied_url
    repo, sql, clock, _ = await _repos(url, stale_for=0)
    try:
        held = await repo.create_banner(BANNER)
        assert await repo.get_banner(held.id) == held
        clock.now += 61
        proxy.stop()
        with pytest.raises(DatabaseUnavailableError):
            await repo.get_banner(held.id)
    finally:
        proxy.start()
        await sql.close()


async def test_a_frozen_postgres_answers_stale_within_the_wait(
    proxied_url: tuple[str, TcpProxy],
) -> None:
    """Frozen (SIGSTOP-like): the load hangs; the stale copy answers after stale_wait."""
    import time

    url, proxy = proxied_url
    repo, sql, clock, state = await _repos(url, stale_for=86_400)
    try:
        held = await repo.create_banner(BANNER)
        assert await repo.get_banner(held.id) == held
        clock.now += 61
        proxy.freeze()
        started = time.monotonic()
        assert await repo.get_banner(held.id) == held
        assert time.monotonic() - started < 1.0  # stale_wait 0.2 s, not the 1 s timeouts
        state.failed("frozen")  # known down (the click writer says so): no wait at all
        started = time.monotonic()
        for _ in range(100):
            assert await repo.get_banner(held.id) == held
        assert time.monotonic() - started < 0.5
    finally:
        proxy.thaw()
        await sql.close()


async def test_a_placement_serves_from_memory_while_postgres_is_gone(
    proxied_url: tuple[str, TcpProxy],
) -> None:
    """The serve's candidates are stale-if-error too; a placement never cached still 503s."""
    import random

    from bannertrack.caching.placements import CachedPlacements
    from bannertrack.clicks.impressions import ImpressionBatcher
    from bannertrack.clicks.privacy import VisitorHasher
    from bannertrack.clicks.recording import Visit
    from bannertrack.clicks.signing import ClickSigner
    from bannertrack.models import PlacementBanner, PlacementCreate
    from bannertrack.placements.serve import Server

    url, proxy = proxied_url
    repo, sql, clock, state = await _repos(url, stale_for=86_400)
    placements = CachedPlacements(
        sql, repo.cache, repo.invalidate, ttl=60, serving=repo.serving_read
    )
    server = Server(
        candidates=placements.candidates,
        impressions=ImpressionBatcher(repo),
        hasher=VisitorHasher(),
        signer=ClickSigner(b"s" * 32),
        trusted_proxies=(),
        rng=random.Random(1),
    )
    visit = Visit("", True, "8.8.8.8", None, "Mozilla/5.0 (X11; Linux x86_64) Firefox/120", None)
    try:
        banner = await repo.create_banner(BANNER)
        held = await placements.create_placement(PlacementCreate(name="held"))
        never = await placements.create_placement(PlacementCreate(name="never served"))
        await placements.set_placement_banners(
            held.id, [PlacementBanner(banner_id=banner.id, weight=1)]
        )
        served = await server.serve(held.id, visit)
        assert served is not None
        clock.now += 120  # past the TTL
        proxy.stop()
        again = await server.serve(held.id, visit)  # stale, not 503
        assert again is not None and again.banner.id == banner.id and state.down
        with pytest.raises(DatabaseUnavailableError):
            await server.serve(never.id, visit)
    finally:
        proxy.start()
        await sql.close()
