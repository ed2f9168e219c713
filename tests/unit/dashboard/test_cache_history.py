"""Recent hit rates from snapshots of the cache counters, with a fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from bannertrack.cache import CacheStats, MemoryCache
from bannertrack.dashboard.cache_history import CacheHistory, Counts
from bannertrack.dashboard.cache_panel import cache_panel
from tests.support.fake_time import FakeSleep


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lookups(cache: MemoryCache, hits: int, misses: int, ns: str = "banner") -> None:
    cache.set(f"{ns}:hot", 1, ttl=3600)
    for _ in range(hits):
        assert cache.get(f"{ns}:hot") == 1
    for i in range(misses):
        cache.get(f"{ns}:cold{i}")


def test_recent_rate_is_the_difference_of_snapshots() -> None:
    cache, clock = MemoryCache(max_entries=100), Clock()
    history = CacheHistory(cache.stats, interval=10, keep=60, clock=clock)
    history.sample()
    lookups(cache, hits=0, misses=100)  # a cold start, minutes ago
    clock.now += 300
    history.sample()
    lookups(cache, hits=90, misses=10)
    clock.now += 50
    recent = history.recent(60)
    assert recent is not None and recent.total.hit_rate == pytest.approx(0.9)
    assert recent.namespaces["banner"].hits == 90
    assert cache.stats().hit_rate < 0.5  # the lifetime rate hides how it does now
    longer = history.recent(600)
    assert longer is not None and longer.total.hit_rate == pytest.approx(90 / 200)
    assert history.hit_rates() == [0.0]  # one interval between two snapshots, all misses


def test_the_ring_is_bounded_and_survives_a_reset() -> None:
    cache, clock = MemoryCache(max_entries=100), Clock()
    history = CacheHistory(cache.stats, keep=5, clock=clock)
    for _ in range(20):
        history.sample()
        clock.now += 10
    assert len(history) == 5
    # After a reset the counters start again from zero: what they hold is the difference.
    assert Counts(5, 1, 0).since(Counts(50, 2, 0)) == Counts(5, 1, 0)


def test_panel_without_a_cache_and_with_one() -> None:
    history = CacheHistory(lambda: None)
    assert cache_panel(None, history).enabled is False
    cache = MemoryCache(max_entries=100)
    lookups(cache, hits=3, misses=1, ns="click_stats")
    history = CacheHistory(cache.stats)
    history.sample()
    panel = cache_panel(cache.stats(), history)
    rows = {r.name: r for r in panel.rows}
    assert set(rows) >= {"banner", "click_stats", "banner_stats", "top_banners"}
    assert (rows["click_stats"].hits, rows["click_stats"].misses) == (3, 1)
    assert panel.lifetime == "75.0 %" and panel.size == 1


async def test_it_samples_every_interval_and_survives_a_failed_snapshot(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache, sleep = MemoryCache(max_entries=100), FakeSleep()
    fail = False

    def stats() -> CacheStats:
        if fail:
            raise RuntimeError("no stats")
        return cache.stats()

    history = CacheHistory(stats, interval=10, sleep=sleep)
    async with history:
        assert len(history) == 1  # start takes the first snapshot at once
        await sleep.wait_for_sleepers()
        await sleep.advance(10)
        assert len(history) == 2
        fail = True
        with caplog.at_level(logging.ERROR, logger="bannertrack.dashboard"):
            await sleep.advance(10)
        assert "cache snapshot failed" in caplog.text
        fail = False
        await sleep.advance(10)
        assert len(history) == 3  # the loop went on after the failure
    assert not history.running
    await sleep.advance(10)
    assert len(history) == 3  # stopped: no more snapshots


class SlowToWake:
    """A ``sleep`` whose clean-up after cancellation takes until ``release`` is set."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.release = asyncio.Event()
        self.asleep = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.asleep.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            await self.release.wait()
            raise


async def _cancel_while_stopping(history: CacheHistory, sleep: SlowToWake) -> bool:
    """Cancel the caller of ``stop()`` while the loop is still cleaning up; True if the
    caller's cancellation reached it."""
    await history.start()
    await sleep.asleep.wait()
    stopper = asyncio.create_task(history.stop())
    await sleep.cancelled.wait()  # stop() has cancelled the loop and waits for it
    stopper.cancel()  # now the shutdown itself is cancelled
    sleep.release.set()
    try:
        await stopper
    except asyncio.CancelledError:
        return True
    return False


async def test_stop_passes_on_a_cancellation_aimed_at_its_caller() -> None:
    sleep = SlowToWake()
    history = CacheHistory(MemoryCache(max_entries=10).stats, sleep=sleep)
    assert await _cancel_while_stopping(history, sleep) is True
    assert not history.running


async def test_the_check_catches_a_stop_that_swallows_it() -> None:
    # Negative control: the hand-written loop this replaced (cancel, then await the task
    # inside suppress(CancelledError)) loses the caller's cancellation.
    class Swallowing(CacheHistory):
        async def start(self) -> None:
            self.loop = asyncio.create_task(self._body())

        async def stop(self) -> None:
            self.loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.loop

        async def _body(self) -> None:
            await self.sleep(10)

    sleep = SlowToWake()
    history = Swallowing(MemoryCache(max_entries=10).stats, sleep=sleep)
    history.sleep = sleep
    assert await _cancel_while_stopping(history, sleep) is False
