"""The background sweep starts and stops with the application and never blocks it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
from cache_fakes import FakeClock

from bannertrack.cache import MemoryCache


async def _until(predicate: Callable[[], bool], seconds: float = 2.0) -> None:
    """Poll real time for the sweep (the cache's own clock is fake and moved by hand)."""
    for _ in range(int(seconds / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached in time")


async def test_background_cleanup_sweeps_and_stops(clock: FakeClock) -> None:
    cache = MemoryCache(max_entries=10_000, cleanup_interval=0.01, clock=clock)
    for i in range(3000):
        cache.set(f"k:{i}", i, ttl=5.0)
    for i in range(10):
        cache.set(f"short:{i}", i, ttl=1.0)
    await cache.start()
    await cache.start()  # idempotent: still one task
    tasks = [t for t in asyncio.all_tasks() if t.get_name() == "bannertrack-cache-cleanup"]
    assert len(tasks) == 1
    clock.advance(1.0)
    # The sweep runs (the short entries go) and spares what is still live.
    await _until(lambda: len(cache) == 3000)
    await asyncio.sleep(0.03)
    assert len(cache) == 3000
    clock.advance(4.0)
    await _until(lambda: len(cache) == 0)
    assert cache.stats().expirations == 3010
    await cache.stop()
    assert tasks[0].done()
    await cache.stop()  # idempotent
    cache.set("k:x", 1, ttl=1.0)
    clock.advance(1.0)
    await asyncio.sleep(0.03)
    assert len(cache) == 1  # stopped means stopped


async def test_cleanup_can_restart_after_stop(clock: FakeClock) -> None:
    cache = MemoryCache(cleanup_interval=0.01, clock=clock)
    await cache.start()
    await cache.stop()
    await cache.start()
    cache.set("k", 1, ttl=1.0)
    clock.advance(1.0)
    await _until(lambda: len(cache) == 0)
    await cache.stop()


async def test_a_failing_sweep_is_logged_and_cleanup_goes_on(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="bannertrack.cache")
    failures = 0

    def flaky_clock() -> float:
        nonlocal failures
        if failures < 1:
            failures += 1
            raise RuntimeError("clock hiccup")
        return clock()

    cache = MemoryCache(cleanup_interval=0.01, clock=clock)
    cache.set("k", 1, ttl=1.0)
    cache._clock = flaky_clock
    clock.advance(1.0)
    await cache.start()
    await _until(lambda: len(cache) == 0)
    await cache.stop()
    assert failures == 1
    assert "cache cleanup sweep failed" in caplog.text


async def test_the_loop_keeps_running_during_a_large_sweep(clock: FakeClock) -> None:
    cache = MemoryCache(max_entries=50_000, cleanup_interval=0.01, clock=clock)
    for i in range(50_000):
        cache.set(f"k:{i}", i, ttl=1.0)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    clock.advance(1.0)
    tick_task = asyncio.create_task(ticker())
    await cache.start()
    await _until(lambda: len(cache) == 0, seconds=10.0)
    await cache.stop()
    tick_task.cancel()
    await asyncio.wait({tick_task})
    assert ticks > 40  # the sweep gave the loop a turn after every chunk
