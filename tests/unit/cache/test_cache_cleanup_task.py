"""The background sweep starts and stops with the application and never blocks it.

Time is fake twice over: the cache's clock decides what has expired, and a ``FakeSleep``
decides when the sweep runs. Nothing here waits on the wall clock.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from cache_fakes import FakeClock
from tests.support.fake_time import FakeSleep

from bannertrack.cache import MemoryCache

INTERVAL = 30.0


def _cleanup_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "bannertrack-cache-cleanup"]


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


async def test_background_cleanup_sweeps_and_stops(clock: FakeClock, sleep: FakeSleep) -> None:
    cache = MemoryCache(max_entries=10_000, cleanup_interval=INTERVAL, clock=clock, sleep=sleep)
    for i in range(3000):
        cache.set(f"k:{i}", i, ttl=5.0)
    for i in range(10):
        cache.set(f"short:{i}", i, ttl=1.0)
    await cache.start()
    await cache.start()  # idempotent: still one task
    tasks = _cleanup_tasks()
    assert len(tasks) == 1
    await sleep.wait_for_sleepers(1)
    clock.advance(1.0)
    await sleep.advance(INTERVAL - 1)
    assert len(cache) == 3010  # not yet time to sweep: expired entries are still held
    await sleep.advance(1)
    assert len(cache) == 3000  # the short entries went, the live ones stay
    clock.advance(4.0)
    await sleep.advance(INTERVAL)
    assert len(cache) == 0
    assert cache.stats().expirations == 3010
    await cache.stop()
    assert tasks[0].done()
    await cache.stop()  # idempotent
    cache.set("k:x", 1, ttl=1.0)
    clock.advance(1.0)
    await sleep.advance(10 * INTERVAL)
    assert len(cache) == 1  # stopped means stopped


async def test_cleanup_can_restart_after_stop(clock: FakeClock, sleep: FakeSleep) -> None:
    cache = MemoryCache(cleanup_interval=INTERVAL, clock=clock, sleep=sleep)
    await cache.start()
    await cache.stop()
    assert _cleanup_tasks() == []
    await cache.start()
    await sleep.wait_for_sleepers(1)
    cache.set("k", 1, ttl=1.0)
    clock.advance(1.0)
    await sleep.advance(INTERVAL)
    assert len(cache) == 0
    await cache.stop()


async def test_a_failing_sweep_is_logged_and_cleanup_goes_on(
    clock: FakeClock, sleep: FakeSleep, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="bannertrack.cache")
    failures = 0
    armed = False  # the clock fails once, at its first reading once armed: the sweep's

    def flaky_clock() -> float:
        nonlocal failures
        if armed and failures < 1:
            failures += 1
            raise RuntimeError("clock hiccup")
        return clock()

    cache = MemoryCache(cleanup_interval=INTERVAL, clock=flaky_clock, sleep=sleep)
    cache.set("k", 1, ttl=1.0)
    armed = True
    clock.advance(1.0)
    await cache.start()
    await sleep.wait_for_sleepers(1)
    await sleep.advance(INTERVAL)
    assert failures == 1 and len(cache) == 1  # the first sweep failed...
    assert "cache cleanup sweep failed" in caplog.text
    await sleep.advance(INTERVAL)
    assert len(cache) == 0  # ...and the next one ran
    await cache.stop()


async def test_the_loop_keeps_running_during_a_large_sweep(
    clock: FakeClock, sleep: FakeSleep
) -> None:
    cache = MemoryCache(max_entries=50_000, cleanup_interval=INTERVAL, clock=clock, sleep=sleep)
    for i in range(50_000):
        cache.set(f"k:{i}", i, ttl=1.0)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    clock.advance(1.0)
    await cache.start()
    await sleep.wait_for_sleepers(1)
    tick_task = asyncio.create_task(ticker())
    await sleep.advance(INTERVAL)  # lets the loop turn until the sweep sleeps again
    assert len(cache) == 0
    await cache.stop()
    tick_task.cancel()
    await asyncio.wait({tick_task})
    assert ticks > 40  # the sweep gave the loop a turn after every chunk
