"""The Redis L2 tier and ``TieredCache`` against a real Redis.

Two ``TieredCache`` objects over one Redis stand for two instances: each has its own L1,
they share L2. The poisoning race is forced with events, not sleeps.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from tests.support.server import free_port
from tests.support.services import redis_server

from bannertrack.bootstrap import CACHED_TYPES
from bannertrack.cache import NO_VALUE, Cache, MemoryCache, RedisTier, StructCodec, TieredCache
from bannertrack.models import Banner, BannerWithStats, ClickStats, TopBanner, TopBanners

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
BANNER = Banner(
    id=7,
    name="seven",
    image_url="https://x.example/7.png",
    target_url="https://x.example/",
    active=True,
    forward_query=True,
    created_at=NOW,
    updated_at=NOW,
)
STATS = ClickStats(
    banner_id=7,
    total_clicks=3,
    clicks_last_hour=1,
    clicks_last_24h=3,
    first_click_at=NOW,
    last_click_at=None,
)
CODEC = StructCodec((*CACHED_TYPES, str, int))  # the service's types, and plain ones for tests


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
async def tiers(redis_url: str) -> AsyncIterator[tuple[RedisTier, RedisTier]]:
    prefix = f"t{uuid.uuid4().hex[:8]}:"  # every test gets its own key space
    a = RedisTier.from_url(redis_url, CODEC, prefix=prefix)
    b = RedisTier.from_url(redis_url, CODEC, prefix=prefix)
    yield a, b
    await a.close()
    await b.close()


def counting(value: object) -> tuple[list[int], object]:
    calls = [0]

    async def load() -> object:
        calls[0] += 1
        return value

    return calls, load


@pytest.mark.parametrize(
    "value",
    [
        BANNER,
        None,
        STATS,
        BannerWithStats(banner=BANNER, stats=STATS),
        TopBanners(limit=2, items=(TopBanner(banner=BANNER, clicks=3),)),
        TopBanners(limit=5, items=()),
    ],
)
async def test_values_round_trip_through_l2_with_their_types(
    tiers: tuple[RedisTier, RedisTier], value: object
) -> None:
    a, b = tiers
    first, second = TieredCache(MemoryCache(), a), TieredCache(MemoryCache(), b)
    calls, load = counting(value)
    assert await first.get_or_load("k:1", load, 30) == value
    got = await second.get_or_load("k:1", load, 30)  # other instance: from L2
    assert calls == [1]
    assert got == value and type(got) is type(value)
    assert b.counters.hits == 1


async def test_an_l2_hit_keeps_the_remaining_ttl_in_l1(tiers: tuple[RedisTier, RedisTier]) -> None:
    a, b = tiers
    now = [1000.0]
    await TieredCache(MemoryCache(), a).get_or_load("banner:7", counting(BANNER)[1], 10)
    l1 = MemoryCache(clock=lambda: now[0])
    second = TieredCache(l1, b)
    await second.get_or_load("banner:7", counting(None)[1], 10)
    now[0] += 10.5  # the L2 entry's deadline was under 10 s away: L1 must not outlive it
    assert l1.get("banner:7") is NO_VALUE


async def test_invalidation_of_keys_prefixes_and_everything(
    tiers: tuple[RedisTier, RedisTier],
) -> None:
    a, b = tiers
    for key in ("banner:1", "banner:2", "top_banners:5", "top_banners:10", "plain"):
        await TieredCache(MemoryCache(), a).get_or_load(key, counting(None)[1], 30)

    async def in_l2(key: str) -> bool:
        return (await b.fetch(key)).value is not NO_VALUE

    await a.invalidate(["banner:1"], ["top_banners:"])
    assert [
        await in_l2(k) for k in ("banner:1", "banner:2", "top_banners:5", "top_banners:10")
    ] == [
        False,
        True,
        False,
        False,
    ]
    assert await in_l2("plain")
    await a.invalidate((), ("",))
    assert not await in_l2("banner:2") and not await in_l2("plain")


async def test_a_load_that_raced_a_write_cannot_poison_l2(
    tiers: tuple[RedisTier, RedisTier],
) -> None:
    """Load reads L2 (miss) and the old row; a write commits and invalidates; then the
    load writes back. The write-back must be refused, or every instance would read the
    old row from L2 for a whole TTL."""
    a, b = tiers
    slow = TieredCache(MemoryCache(), a)
    read_old, write_done = asyncio.Event(), asyncio.Event()

    async def old_row() -> object:
        read_old.set()
        await write_done.wait()
        return "old"

    loading = asyncio.create_task(slow.get_or_load("banner:9", old_row, 30))
    await read_old.wait()
    # The write happens on another instance: it reaches this one's L1 only through the
    # bus, so L1 is not told here; L2 is (the writer's invalidation runs in Redis).
    await b.invalidate(["banner:9"], ["top_banners:"])
    write_done.set()
    assert await loading == "old"  # its own caller asked before the write: fine
    assert a.counters.stores_refused == 1 and a.counters.stores == 0
    fresh = TieredCache(MemoryCache(), b)
    assert await fresh.get_or_load("banner:9", counting("new")[1], 30) == "new"


async def test_a_write_back_after_a_prefix_drop_is_refused(
    tiers: tuple[RedisTier, RedisTier],
) -> None:
    a, b = tiers
    miss = await a.fetch("top_banners:3")
    assert miss.token is not None
    await b.invalidate((), ("top_banners:",))
    assert not await a.store("top_banners:3", None, 30, miss.token)
    miss = await a.fetch("top_banners:3")
    assert miss.token is not None
    assert await a.store("top_banners:3", None, 30, miss.token)
    assert (await b.fetch("top_banners:3")).value is None


async def test_an_invalidation_during_an_l2_read_keeps_it_out_of_l1(
    tiers: tuple[RedisTier, RedisTier],
) -> None:
    a, b = tiers
    await TieredCache(MemoryCache(), b).get_or_load("banner:4", counting("old")[1], 30)
    cache = TieredCache(MemoryCache(), a)
    fetched, release = asyncio.Event(), asyncio.Event()
    real_fetch = a.fetch

    async def slow_fetch(key: str) -> object:
        found = await real_fetch(key)
        fetched.set()
        await release.wait()  # the L2 read is in flight until the invalidation is done
        return found

    a.fetch = slow_fetch  # type: ignore[assignment,method-assign]
    loading = asyncio.create_task(cache.get_or_load("banner:4", counting("x")[1], 30))
    await fetched.wait()
    cache.delete("banner:4")  # the bus applies another instance's write
    await b.invalidate(["banner:4"])
    release.set()
    assert await loading == "old"
    assert cache.get("banner:4") is NO_VALUE
    a.fetch = real_fetch  # type: ignore[method-assign]
    assert await cache.get_or_load("banner:4", counting("new")[1], 30) == "new"


async def test_redis_down_never_fails_a_load_and_fails_fast() -> None:
    tier = RedisTier.from_url(f"redis://127.0.0.1:{free_port()}/0", CODEC, timeout=0.2)
    cache: Cache = TieredCache(MemoryCache(), tier)
    started = time.perf_counter()
    for i in range(20):
        assert await cache.get_or_load(f"banner:{i}", counting(i)[1], 30) == i
    assert time.perf_counter() - started < 1.0  # one failed connect, then the circuit rests
    assert tier.counters.errors == 1 and not tier.available
    await tier.close()


async def test_degraded_mode_skips_l2_and_caps_the_l1_ttl(
    tiers: tuple[RedisTier, RedisTier],
) -> None:
    a, _ = tiers
    now = [0.0]
    degraded = [True]
    l1 = MemoryCache(clock=lambda: now[0])
    cache = TieredCache(l1, a, degraded_ttl=2.0, is_degraded=lambda: degraded[0])
    assert await cache.get_or_load("banner:1", counting("v")[1], 300) == "v"
    assert a.counters.misses == 0 and a.counters.stores == 0  # L2 untouched
    now[0] += 2.5
    assert l1.get("banner:1") is NO_VALUE
    degraded[0] = False
    assert await cache.get_or_load("banner:1", counting("v")[1], 300) == "v"
    assert a.counters.stores == 1
    now[0] += 250
    assert l1.get("banner:1") == "v"


@pytest.mark.parametrize("with_l2", [True, False])
async def test_reads_through_the_tiers_count_once(
    tiers: tuple[RedisTier, RedisTier], with_l2: bool
) -> None:
    """hits + misses = gets through TieredCache too: a cold read is one miss, not two."""
    cache = TieredCache(MemoryCache(), tiers[0] if with_l2 else None)
    calls, load = counting(BANNER)
    for _ in range(3):
        assert await cache.get_or_load("banner:7", load) == BANNER
    stats = cache.stats()
    assert (stats.misses, stats.hits, calls[0]) == (1, 2, 1)


async def test_local_only_keys_never_touch_l2(tiers: tuple[RedisTier, RedisTier]) -> None:
    """A composed value (banner_stats) stays in each instance's L1; others still share."""
    a, b = tiers
    first = TieredCache(MemoryCache(), a, local_only=("banner_stats:",))
    second = TieredCache(MemoryCache(), b, local_only=("banner_stats:",))
    calls, load = counting(BANNER)
    await first.get_or_load("banner_stats:7", load, 30)
    await second.get_or_load("banner_stats:7", load, 30)
    assert calls == [2]  # each instance loaded it: nothing was shared through L2
    assert (a.counters.hits, a.counters.misses, a.counters.stores) == (0, 0, 0)
    assert (b.counters.hits, b.counters.misses, b.counters.stores) == (0, 0, 0)
    await first.get_or_load("banner:7", load, 30)
    await second.get_or_load("banner:7", load, 30)
    assert calls == [3] and b.counters.hits == 1  # other keys still go through L2
