"""CachedRepository: policy, invalidation, herd protection, consistency, degradation.

All of it runs over a real SQLite file and a real PostgreSQL; the consistency harness
also over L1 + a real Redis L2.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from tests.support.race import RacedReads, WriteRace
from tests.support.services import redis_server
from tests.support.slow import SlowReads

from bannertrack.cache import NO_VALUE, MemoryCache, RedisTier, StructCodec, TieredCache
from bannertrack.caching import keys as cache_keys
from bannertrack.caching.cached_repository import CachedRepository
from bannertrack.caching.policy import CachePolicy
from bannertrack.db.repository import SqlRepository
from bannertrack.models import (
    Banner,
    BannerCreate,
    BannerUpdate,
    BannerWithStats,
    ClickIn,
    ClickStats,
    TopBanners,
)

V = TypeVar("V")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def banner_in(i: int) -> BannerCreate:
    return BannerCreate(
        name=f"v0 banner {i}",
        image_url=f"https://cdn.example.com/{i}.png",
        target_url=f"https://shop.example.com/{i}",
    )


def click(banner_id: int) -> ClickIn:
    return ClickIn(banner_id=banner_id, occurred_at=datetime.now(UTC))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cached(sql_repo: SqlRepository, clock: FakeClock) -> CachedRepository:
    return CachedRepository(sql_repo, MemoryCache(max_entries=10_000, clock=clock))


async def test_reads_are_served_from_cache_until_their_ttl(
    cached: CachedRepository, sql_repo: SqlRepository, clock: FakeClock
) -> None:
    policy = CachePolicy()
    b = await cached.create_banner(banner_in(1))
    reads: list[tuple[str, Callable[[], Awaitable[Any]], float]] = [
        ("banner", lambda: cached.get_banner(b.id), policy.banner_ttl),
        ("click_stats", lambda: cached.click_stats(b.id), policy.click_stats_ttl),
        ("top_banners", lambda: cached.top_banners(10), policy.top_banners_ttl),
    ]
    for name, read, ttl in reads:
        start = clock.now
        first = await read()
        before = sql_repo.queries.count
        assert await read() == first, name
        clock.now = start + ttl - 0.5
        assert await read() == first, name
        assert sql_repo.queries.count == before, f"{name} went to the database before its TTL"
        clock.now = start + ttl + 0.5
        await read()
        assert sql_repo.queries.count == before + 1, f"{name} was not reloaded after its TTL"


async def test_series_and_lists_are_not_cached(
    cached: CachedRepository, sql_repo: SqlRepository
) -> None:
    b = await cached.create_banner(banner_in(1))
    now = datetime.now(UTC)
    for read in (
        lambda: cached.click_series(b.id, now, now, "hour"),
        lambda: cached.list_banners(0, 10),
    ):
        await read()
        before = sql_repo.queries.count
        await read()
        assert sql_repo.queries.count > before


async def prime(cached: CachedRepository, ids: list[int]) -> None:
    for i in ids:
        await cached.banner_with_stats(i)
    for limit in (1, 5, 10):
        await cached.top_banners(limit)


def present(cached: CachedRepository, ids: list[int]) -> set[str]:
    keys = [f"{ns}:{i}" for ns in ("banner", "click_stats", "banner_stats") for i in ids]
    keys += [f"top_banners:{n}" for n in (1, 5, 10)]
    return {k for k in keys if cached.cache.get(k) is not NO_VALUE}


@pytest.mark.parametrize(
    ("write", "gone"),
    [
        ("update", {"banner:A", "banner_stats:A", "top_banners:*"}),
        ("click", {"click_stats:A", "banner_stats:A", "top_banners:*"}),
        ("delete", {"banner:A", "click_stats:A", "banner_stats:A", "top_banners:*"}),
    ],
)
async def test_invalidation_cascades_exactly_as_designed(
    cached: CachedRepository, write: str, gone: set[str]
) -> None:
    a = (await cached.create_banner(banner_in(1))).id
    other = (await cached.create_banner(banner_in(2))).id
    await prime(cached, [a, other])
    before = present(cached, [a, other])
    assert len(before) == 9
    if write == "update":
        await cached.update_banner(a, BannerUpdate(name="v1 renamed"))
    elif write == "click":
        await cached.record_clicks([click(a), click(a)])
    else:
        await cached.delete_banner(a)
    expected_gone = {k.replace(":A", f":{a}") for k in gone if k != "top_banners:*"}
    expected_gone |= {f"top_banners:{n}" for n in (1, 5, 10)}
    assert before - present(cached, [a, other]) == expected_gone


async def test_created_banner_is_not_shadowed_by_a_cached_miss(
    cached: CachedRepository,
) -> None:
    first = await cached.create_banner(banner_in(1))
    next_id = first.id + 1
    assert await cached.get_banner(next_id) is None  # cached as "no such banner"
    second = await cached.create_banner(banner_in(2))
    assert second.id == next_id
    assert await cached.get_banner(next_id) == second


async def test_200_concurrent_misses_cost_one_query_per_key(sql_repo: SqlRepository) -> None:
    cached = CachedRepository(SlowReads(sql_repo, max_delay=0.05), MemoryCache())
    b = await sql_repo.create_banner(banner_in(1))
    await sql_repo.record_clicks([click(b.id)])
    before = sql_repo.queries.count
    results = await asyncio.gather(*(cached.banner_with_stats(b.id) for _ in range(200)))
    assert len({id(r) for r in results}) == 1 and results[0] is not None
    # banner_with_stats is composed of banner:{id} and click_stats:{id}: two loads.
    assert sql_repo.queries.count - before == 2
    before = sql_repo.queries.count
    tops = await asyncio.gather(*(cached.top_banners(10) for _ in range(200)))
    assert sql_repo.queries.count - before == 1 and len({id(t) for t in tops}) == 1


async def test_warming_never_evicts_and_keeps_to_a_third_of_the_free_capacity(
    sql_repo: SqlRepository,
) -> None:
    """Each banner warms three entries; the budget is in entries, not banners."""
    for i in range(200):
        await sql_repo.create_banner(banner_in(i))
    cache = MemoryCache(max_entries=100)
    repo = CachedRepository(sql_repo, cache)
    loaded = await repo.warm()
    assert cache.stats().evictions == 0
    # 100 // 3 = 33 entries: the five top lists and nine banners of three entries each.
    assert loaded == len(cache) == 5 + 9 * 3

    traffic = [f"banner:{1000 + i}" for i in range(40)]  # what traffic loaded
    cache.clear()
    for key in traffic:
        cache.set(key, None)
    loaded = await repo.warm()
    assert cache.stats().evictions == 0
    assert all(key in cache for key in traffic)
    assert loaded == (100 - 40) // 3 == 5 + 5 * 3


# --- the consistency promise ------------------------------------------------------------


class NaiveCache(MemoryCache):
    """The classic bug, for the negative control: load, then store whatever came back."""

    async def get_or_load(self, key: str, loader: Any, ttl: float | None = None) -> Any:
        value = self.get(key)
        if value is NO_VALUE:
            value = await loader()
            self.set(key, value, ttl)
        return value


async def stale_reads(
    repo: CachedRepository,
    banner_ids: list[int],
    seed: int,
    also_read_via: CachedRepository | None = None,
    race: WriteRace | None = None,
) -> tuple[int, int]:
    """Writers update names and record clicks while readers read; count stale reads.

    A read is stale if it shows a banner version or a click count older than what a
    write had already returned before the read began. Each banner has one name writer,
    so its acknowledged version only grows. With ``also_read_via`` (a second instance),
    every other reader reads through it. ``race`` (with ``RacedReads`` under the cache)
    is told when each write begins and is acknowledged.
    """
    race = race or WriteRace()
    rng = random.Random(seed)
    version = dict.fromkeys(banner_ids, 0)
    acked = dict.fromkeys(banner_ids, 0)
    stale = 0
    reads = 0
    counter = itertools.count(1)

    async def name_writer(owned: list[int]) -> None:
        for _ in range(60):
            b = rng.choice(owned)
            v = next(counter)
            write = race.begin()
            await repo.update_banner(b, BannerUpdate(name=f"v{v} banner"))
            version[b] = v
            await race.acked(write)
            await asyncio.sleep(rng.random() * 0.002)  # jitter: vary the interleavings

    async def click_writer() -> None:
        for _ in range(60):
            b = rng.choice(banner_ids)
            n = rng.randint(1, 3)
            write = race.begin()
            await repo.record_clicks([click(b) for _ in range(n)])
            acked[b] += n
            await race.acked(write)
            await asyncio.sleep(rng.random() * 0.002)  # jitter: vary the interleavings

    def v_of(name: str) -> int:
        return int(name.split()[0][1:])

    async def reader(repo: CachedRepository) -> None:
        nonlocal stale, reads
        for _ in range(150):
            b = rng.choice(banner_ids)
            floor_v, floor_c = version[b], acked[b]
            op = rng.randrange(4)
            reads += 1
            if op == 0:
                banner = await repo.get_banner(b)
                assert banner is not None
                stale += v_of(banner.name) < floor_v
            elif op == 1:
                stats = await repo.click_stats(b)
                assert stats is not None
                stale += stats.total_clicks < floor_c
            elif op == 2:
                ws = await repo.banner_with_stats(b)
                assert ws is not None
                stale += v_of(ws.banner.name) < floor_v or ws.stats.total_clicks < floor_c
            else:
                floors = {i: (version[i], acked[i]) for i in banner_ids}
                top = await repo.top_banners(len(banner_ids))
                for item in top.items:
                    fv, fc = floors[item.banner.id]
                    stale += v_of(item.banner.name) < fv or item.clicks < fc

    async def writers() -> None:
        half = len(banner_ids) // 2
        await asyncio.gather(
            name_writer(banner_ids[:half]),
            name_writer(banner_ids[half:]),
            click_writer(),
            click_writer(),
        )
        await race.close()

    await asyncio.gather(
        writers(),
        *(reader(also_read_via if also_read_via and i % 2 else repo) for i in range(12)),
    )
    return stale, reads


@pytest.mark.parametrize("seed", [2, 3, 4])
async def test_no_stale_read_after_a_write_returned(sql_repo: SqlRepository, seed: int) -> None:
    ids = [(await sql_repo.create_banner(banner_in(i))).id for i in range(4)]
    repo = CachedRepository(SlowReads(sql_repo, max_delay=0.004, seed=seed), MemoryCache())
    stale, reads = await stale_reads(repo, ids, seed=seed)
    assert reads == 12 * 150
    assert stale == 0


async def test_the_stale_read_check_catches_a_naive_cache(sql_repo: SqlRepository) -> None:
    """Negative control: the same harness over a cache without versioned loads.

    Every load is made to race a write (``RacedReads``), so the naive cache stores
    values older than an acknowledged write however fast the database is.
    """
    ids = [(await sql_repo.create_banner(banner_in(i))).id for i in range(4)]
    race = WriteRace()
    repo = CachedRepository(RacedReads(sql_repo, race), NaiveCache())
    stale, _ = await stale_reads(repo, ids, seed=2, race=race)
    print(f"naive cache: {stale} stale reads")
    assert stale > 0


async def test_no_stale_read_when_every_load_races_a_write(sql_repo: SqlRepository) -> None:
    """The positive side of the same forced race: the real cache stays exact under it."""
    ids = [(await sql_repo.create_banner(banner_in(i))).id for i in range(4)]
    race = WriteRace()
    repo = CachedRepository(RacedReads(sql_repo, race), MemoryCache())
    stale, reads = await stale_reads(repo, ids, seed=2, race=race)
    assert reads == 12 * 150
    assert stale == 0


# The same promise over L1 + a real Redis L2: a write returns only once L2 no longer holds
# what it replaced (the bus's job in the service; here the tier's own invalidation).

CACHED = (Banner, ClickStats, BannerWithStats, TopBanners)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
async def tier(redis_url: str) -> AsyncIterator[RedisTier]:
    tier = RedisTier.from_url(redis_url, StructCodec(CACHED), prefix=f"s{uuid.uuid4().hex[:8]}:")
    yield tier
    await tier.close()


def two_instances(
    tier: RedisTier, inner: SlowReads, *, reach_l2: bool = True
) -> tuple[CachedRepository, CachedRepository]:
    """Two instances, each with its own L1, sharing ``tier``; writes go through the first.

    Its hook does what the bus does once it has delivered: drop the keys from L2 (unless
    ``reach_l2`` is off, for the negative control) and from the other instance's L1.
    """
    # As the service configures it (bootstrap/_cache.py): composed values stay local.
    local = (cache_keys.prefix(cache_keys.BANNER_STATS),)
    other = TieredCache(MemoryCache(), tier, local_only=local)

    async def bus(keys: Sequence[str], prefixes: Sequence[str]) -> None:
        if reach_l2:
            await tier.invalidate(keys, prefixes)
        for key in keys:
            other.delete(key)
        for prefix in prefixes:
            if prefix == "":
                other.clear()
            else:
                other.delete_prefix(prefix)

    writer = CachedRepository(
        inner, TieredCache(MemoryCache(), tier, local_only=local), on_invalidate=bus
    )
    return writer, CachedRepository(inner, other)


@pytest.mark.parametrize("seed", [2, 3])
async def test_no_stale_read_over_l1_and_redis(
    sql_repo: SqlRepository, tier: RedisTier, seed: int
) -> None:
    ids = [(await sql_repo.create_banner(banner_in(i))).id for i in range(4)]
    writer, other = two_instances(tier, SlowReads(sql_repo, max_delay=0.004, seed=seed))
    stale, reads = await stale_reads(writer, ids, seed=seed, also_read_via=other)
    assert reads == 12 * 150
    assert tier.counters.hits > 0 and tier.counters.stores > 0  # L2 really served
    assert stale == 0


async def test_the_stale_read_check_catches_an_l2_that_writes_do_not_reach(
    sql_repo: SqlRepository, tier: RedisTier
) -> None:
    """Negative control: both L1s are invalidated, L2 is not."""
    ids = [(await sql_repo.create_banner(banner_in(i))).id for i in range(4)]
    writer, other = two_instances(
        tier, SlowReads(sql_repo, max_delay=0.004, seed=1), reach_l2=False
    )
    # Every key in L2 before the first write, so the check does not hang on which loads
    # happened to store there: each later read through the other instance that misses its
    # L1 finds L2's copy from before the writes.
    for banner_id in ids:
        await writer.get_banner(banner_id)
        await writer.click_stats(banner_id)
    await writer.top_banners(len(ids))
    stale, _ = await stale_reads(writer, ids, seed=2, also_read_via=other)
    print(f"L2 without invalidation: {stale} stale reads")
    assert stale > 0
