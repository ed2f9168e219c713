"""Stress from many threads (each with its own event loop) and many tasks: counts add up
and the structure stays whole."""

from __future__ import annotations

import asyncio
import random
import sys
import threading
from collections.abc import Iterator

import pytest
from cache_fakes import FakeClock

from bannertrack.cache import NO_VALUE, MemoryCache

NAMESPACES = ("banner", "click_stats", "top_banners")


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads every few microseconds so races happen inside short code paths."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def assert_structure_is_whole(cache: MemoryCache) -> None:
    stats = cache.stats()
    assert stats.size == len(cache) == len(cache.eviction_order()) <= stats.max_entries
    assert sum(ns.size for ns in stats.namespaces.values()) == stats.size
    cache.verify()


@pytest.mark.usefixtures("busy_switching")
def test_threads_hits_plus_misses_equal_gets() -> None:
    clock = FakeClock()
    cache = MemoryCache(max_entries=150, default_ttl=3.0, clock=clock)
    threads_n, ops_n = 8, 6000
    gets = [0] * threads_n
    sets = [0] * threads_n
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_n)

    async def loaded() -> str:
        return "loaded"

    async def ops(index: int) -> None:
        rng = random.Random(index)
        for _ in range(ops_n):
            key = f"{rng.choice(NAMESPACES)}:{rng.randrange(100)}"
            roll = rng.random()
            if roll < 0.70:
                gets[index] += 1
                cache.get(key)
            elif roll < 0.80:
                gets[index] += 1
                await cache.get_or_load(key, loaded, ttl=2.0)
            elif roll < 0.95:
                sets[index] += 1
                cache.set(key, index, ttl=rng.choice([None, 1.0, 5.0]))
            elif roll < 0.98:
                cache.delete(key)
            elif roll < 0.99:
                cache.delete_prefix(f"{rng.choice(NAMESPACES)}:1")
            elif index == 0:
                clock.advance(0.5)
            else:
                cache.cleanup_expired()

    def work(index: int) -> None:
        barrier.wait()
        try:
            asyncio.run(ops(index))
        except BaseException as exc:  # surfaced below; a thread cannot fail the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    stats = cache.stats()
    assert stats.hits + stats.misses == sum(gets)
    assert stats.sets >= sum(sets)  # plus the loads that stored
    assert stats.evictions > 0
    assert stats.expirations > 0
    assert stats.deletes > 0
    assert cache.in_flight() == 0
    assert_structure_is_whole(cache)


@pytest.mark.usefixtures("busy_switching")
def test_threads_hammering_one_hot_key_count_every_hit() -> None:
    cache = MemoryCache(default_ttl=None)
    cache.set("banner:1", "hot")
    threads_n, gets_n = 8, 20_000

    def work() -> None:
        get = cache.get
        for _ in range(gets_n):
            get("banner:1")

    threads = [threading.Thread(target=work) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = cache.stats()
    assert stats.hits == threads_n * gets_n
    assert stats.namespaces["banner"].hits == threads_n * gets_n


async def test_many_tasks_with_loads_failures_and_invalidations() -> None:
    clock = FakeClock()
    cache = MemoryCache(max_entries=40, default_ttl=2.0, clock=clock)
    rng = random.Random(7)
    counted_gets = 0
    loads = 0

    async def loader(key: str) -> str:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0 if rng.random() < 0.5 else 0.0005)  # a query, sometimes slow
        if rng.random() < 0.1:
            raise LookupError(key)
        return f"v:{key}"

    async def client(seed: int) -> None:
        nonlocal counted_gets
        local = random.Random(seed)
        for _ in range(60):
            key = f"{local.choice(NAMESPACES)}:{local.randrange(30)}"
            roll = local.random()
            if roll < 0.6:
                counted_gets += 1
                try:
                    value = await cache.get_or_load(key, lambda k=key: loader(k))
                except LookupError:
                    continue
                assert value == f"v:{key}" or isinstance(value, int)
            elif roll < 0.8:
                counted_gets += 1
                got = cache.get(key)
                assert got is NO_VALUE or got == f"v:{key}" or isinstance(got, int)
            elif roll < 0.9:
                cache.set(key, seed)
            elif roll < 0.95:
                cache.delete(key)
            elif roll < 0.98:
                cache.delete_prefix(local.choice(NAMESPACES))
            else:
                clock.advance(1.0)
            await asyncio.sleep(0)

    await asyncio.gather(*(client(seed) for seed in range(400)))
    for _ in range(3):
        await asyncio.sleep(0)
    stats = cache.stats()
    assert stats.hits + stats.misses == counted_gets
    assert loads <= stats.misses
    assert cache.in_flight() == 0
    assert_structure_is_whole(cache)
