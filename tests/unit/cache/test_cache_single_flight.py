"""Single-flight: many concurrent misses on one key run the loader once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from cache_fakes import FakeClock

from bannertrack.cache import NO_VALUE, MemoryCache


class LoaderError(Exception):
    pass


async def test_herd_of_500_runs_the_loader_once(cache: MemoryCache) -> None:
    calls = 0
    gate = asyncio.Event()

    async def loader() -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        return "value"

    callers = [asyncio.create_task(cache.get_or_load("banner:1", loader)) for _ in range(500)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*callers) == ["value"] * 500
    assert calls == 1
    assert cache.get("banner:1") == "value"
    stats = cache.stats()
    assert (stats.misses, stats.sets, stats.hits) == (500, 1, 1)
    assert cache.in_flight() == 0


async def test_a_failing_loader_raises_the_same_exception_to_all_and_caches_nothing(
    cache: MemoryCache,
) -> None:
    calls = 0
    gate = asyncio.Event()

    async def loader() -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        raise LoaderError("database down")

    callers = [asyncio.create_task(cache.get_or_load("banner:1", loader)) for _ in range(500)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert calls == 1
    assert all(isinstance(r, LoaderError) for r in results)
    assert len({id(r) for r in results}) == 1
    assert len(cache) == 0
    assert cache.stats().sets == 0
    assert cache.in_flight() == 0

    async def good() -> str:
        return "recovered"

    assert await cache.get_or_load("banner:1", good) == "recovered"  # no stale failure


async def test_a_cancelled_waiter_does_not_cancel_the_load_for_others(
    cache: MemoryCache,
) -> None:
    gate = asyncio.Event()
    calls = 0

    async def loader() -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        return "value"

    first = asyncio.create_task(cache.get_or_load("k", loader))
    others = [asyncio.create_task(cache.get_or_load("k", loader)) for _ in range(10)]
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.wait({first})
    assert first.cancelled()
    gate.set()
    assert await asyncio.gather(*others) == ["value"] * 10
    assert calls == 1
    assert cache.get("k") == "value"


async def test_all_waiters_cancelled_still_stores_and_leaves_no_unretrieved_error(
    cache: MemoryCache,
) -> None:
    gate = asyncio.Event()

    async def failing() -> str:
        await gate.wait()
        raise LoaderError("late")

    waiters = [asyncio.create_task(cache.get_or_load("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    for waiter in waiters:
        waiter.cancel()
    await asyncio.wait(waiters)
    gate.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert cache.in_flight() == 0


async def test_hit_does_not_call_the_loader(cache: MemoryCache) -> None:
    cache.set("k", "cached")

    async def loader() -> str:
        raise AssertionError("must not load on a hit")

    assert await cache.get_or_load("k", loader) == "cached"
    assert await cache.load("k", loader) == "cached"  # a value stored since the miss
    assert cache.stats().hits == 1  # load() counts nothing


def value(v: object) -> Callable[[], Awaitable[object]]:
    async def load() -> object:
        return v

    return load


async def test_loader_result_uses_the_given_ttl(cache: MemoryCache, clock: FakeClock) -> None:
    await cache.get_or_load("k", value(1), ttl=5.0)
    clock.advance(4.9)
    assert await cache.get_or_load("k", value(2)) == 1
    clock.advance(0.1)
    assert await cache.get_or_load("k", value(2)) == 2


async def test_load_after_a_miss_is_single_flight_and_counts_nothing(cache: MemoryCache) -> None:
    gate = asyncio.Event()
    calls = 0

    async def loader() -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        return "v"

    assert cache.get("k") is NO_VALUE
    waiters = [asyncio.create_task(cache.load("k", loader)) for _ in range(20)]
    await asyncio.sleep(0)
    assert cache.in_flight() == 1
    gate.set()
    assert await asyncio.gather(*waiters) == ["v"] * 20
    assert calls == 1
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.sets) == (0, 1, 1)
    assert cache.in_flight() == 0


async def test_a_loader_waiting_for_its_own_key_fails_instead_of_hanging(
    cache: MemoryCache,
) -> None:
    async def loader() -> object:
        return await cache.get_or_load("k", loader)

    with pytest.raises(RuntimeError, match="its own key"):
        await cache.get_or_load("k", loader)
