"""Single-flight: many concurrent misses on one key run the loader once."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from cache_fakes import FakeClock

from bannertrack.cache import MemoryCache


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
    assert len(cache._flights) == 0


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
    assert len(cache._flights) == 0

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
    assert len(cache._flights) == 0


async def test_sync_loader_is_accepted_on_the_async_path(cache: MemoryCache) -> None:
    assert await cache.get_or_load("k", lambda: 42) == 42
    assert cache.get("k") == 42


async def test_hit_does_not_call_the_loader(cache: MemoryCache) -> None:
    cache.set("k", "cached")

    def loader() -> str:
        raise AssertionError("must not load on a hit")

    assert await cache.get_or_load("k", loader) == "cached"
    assert cache.get_or_load_sync("k", loader) == "cached"


async def test_loader_result_uses_the_given_ttl(cache: MemoryCache, clock: FakeClock) -> None:
    await cache.get_or_load("k", lambda: 1, ttl=5.0)
    clock.advance(5.0)
    assert await cache.get_or_load("k", lambda: 2) == 2


async def test_a_loader_waiting_for_its_own_key_fails_instead_of_hanging(
    cache: MemoryCache,
) -> None:
    async def loader() -> object:
        return await cache.get_or_load("k", loader)

    with pytest.raises(RuntimeError, match="its own key"):
        await cache.get_or_load("k", loader)


def test_sync_herd_across_threads_runs_the_loader_once(cache: MemoryCache) -> None:
    calls = 0
    started = threading.Event()
    release = threading.Event()

    def loader() -> str:
        nonlocal calls
        calls += 1
        started.set()
        release.wait(5)
        return "value"

    with ThreadPoolExecutor(max_workers=32) as pool:
        futures = [pool.submit(cache.get_or_load_sync, "k", loader) for _ in range(200)]
        started.wait(5)
        while cache.stats().misses < 32:  # every worker has joined the flight
            time.sleep(0.001)
        release.set()
        results = [f.result(timeout=10) for f in futures]
    assert results == ["value"] * 200
    assert calls == 1
    assert cache.stats().sets == 1


def test_sync_failure_reaches_every_waiting_thread(cache: MemoryCache) -> None:
    calls = 0
    release = threading.Event()

    def loader() -> str:
        nonlocal calls
        calls += 1
        release.wait(5)
        raise LoaderError("boom")

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(cache.get_or_load_sync, "k", loader) for _ in range(16)]
        while cache.stats().misses < 16:
            time.sleep(0.001)
        release.set()
        errors = [f.exception(timeout=10) for f in futures]
    assert calls == 1
    assert all(isinstance(e, LoaderError) for e in errors)
    assert len({id(e) for e in errors}) == 1
    assert len(cache) == 0
    assert len(cache._flights) == 0


def test_a_sync_loader_waiting_for_its_own_key_fails_instead_of_hanging(
    cache: MemoryCache,
) -> None:
    def loader() -> object:
        return cache.get_or_load_sync("k", loader)

    with pytest.raises(RuntimeError, match="its own key"):
        cache.get_or_load_sync("k", loader)
    assert len(cache._flights) == 0
