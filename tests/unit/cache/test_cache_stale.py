"""Stale-if-error: a failed or slow load answered with the value kept past its deadline.

Every test moves a fake clock; the slow-load tests wait on events, never on sleeps.
"""

from __future__ import annotations

import asyncio

import pytest
from cache_fakes import FakeClock
from tests.support.waiting import wait_until

from bannertrack.cache import NO_VALUE, MemoryCache, Stale, TieredCache


class Down(Exception):
    """The source cannot answer (what a caller's ``usable`` accepts)."""


class Bug(Exception):
    """Any other error: never answered stale."""


def usable(exc: BaseException) -> bool:
    return isinstance(exc, Down)


AT_ONCE = Stale(usable, lambda: 0.0)
PATIENT = Stale(usable, lambda: 60.0)


@pytest.fixture
def stale_cache(clock: FakeClock) -> MemoryCache:
    return MemoryCache(max_entries=100, default_ttl=60.0, clock=clock, stale_for=3600.0)


async def down() -> str:
    raise Down("source down")


async def fresh() -> str:
    return "new"


async def expired_entry(cache: MemoryCache, clock: FakeClock) -> None:
    cache.set("banner:1", "old", ttl=10)
    clock.advance(11)
    assert cache.get("banner:1") is NO_VALUE  # get never returns it


async def test_a_failed_load_is_answered_with_the_value_held(
    stale_cache: MemoryCache, clock: FakeClock
) -> None:
    await expired_entry(stale_cache, clock)
    for stale in (AT_ONCE, PATIENT):
        assert await stale_cache.get_or_load("banner:1", down, stale=stale) == "old"
    assert stale_cache.stale_served == 2


async def test_negative_controls_without_stale_the_error_reaches_the_caller(
    cache: MemoryCache, stale_cache: MemoryCache, clock: FakeClock
) -> None:
    await expired_entry(stale_cache, clock)
    with pytest.raises(Down):  # the read did not ask for it
        await stale_cache.get_or_load("banner:1", down)
    await expired_entry(cache, clock)
    with pytest.raises(Down):  # the cache keeps nothing past the deadline (stale_for=0)
        await cache.get_or_load("banner:1", down, stale=AT_ONCE)


async def test_a_source_that_answers_is_never_bypassed(
    stale_cache: MemoryCache, clock: FakeClock
) -> None:
    await expired_entry(stale_cache, clock)
    assert await stale_cache.get_or_load("banner:1", fresh, stale=PATIENT) == "new"
    assert stale_cache.get("banner:1") == "new"
    assert stale_cache.stale_served == 0


async def test_other_errors_and_unknown_keys_still_fail(
    stale_cache: MemoryCache, clock: FakeClock
) -> None:
    await expired_entry(stale_cache, clock)

    async def bug() -> str:
        raise Bug("a bug")

    with pytest.raises(Bug):  # a load that ends in time with an error no caller accepts
        await stale_cache.get_or_load("banner:1", bug, stale=PATIENT)
    with pytest.raises(Down):  # never held
        await stale_cache.get_or_load("banner:2", down, stale=AT_ONCE)


async def test_an_invalidation_removes_the_stale_copy(
    stale_cache: MemoryCache, clock: FakeClock
) -> None:
    """The consistency promise: what a returned write made obsolete is never served."""
    for invalidate in (
        lambda: stale_cache.delete("banner:1"),
        lambda: stale_cache.delete_prefix("banner:"),
        stale_cache.clear,
    ):
        await expired_entry(stale_cache, clock)
        invalidate()
        with pytest.raises(Down):
            await stale_cache.get_or_load("banner:1", down, stale=AT_ONCE)


async def test_the_stale_window_is_bounded(stale_cache: MemoryCache, clock: FakeClock) -> None:
    await expired_entry(stale_cache, clock)
    clock.advance(3600)
    with pytest.raises(Down):
        await stale_cache.get_or_load("banner:1", down, stale=AT_ONCE)
    assert len(stale_cache) == 0  # and it is gone for good


async def test_a_shortened_life_keeps_the_fallback(
    stale_cache: MemoryCache, clock: FakeClock
) -> None:
    """cap_ttl (the bus went down) shortens freshness, not the stale window."""
    stale_cache.set("banner:1", "old", ttl=300)
    stale_cache.cap_ttl(5)
    clock.advance(6)
    assert stale_cache.get("banner:1") is NO_VALUE
    assert await stale_cache.get_or_load("banner:1", down, stale=AT_ONCE) == "old"
    # ...and after the cut, the sweep keeps it too.
    assert stale_cache.cleanup_expired() == 0


async def test_a_slow_load_is_answered_stale_and_stores_when_it_comes(
    stale_cache: MemoryCache, clock: FakeClock
) -> None:
    await expired_entry(stale_cache, clock)
    gate = asyncio.Event()
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await gate.wait()
        return "new"

    short = Stale(usable, lambda: 0.01)
    assert await stale_cache.get_or_load("banner:1", slow, stale=short) == "old"
    assert started.is_set() and stale_cache.in_flight() == 1  # the load goes on
    gate.set()
    await wait_until(lambda: not stale_cache.in_flight(), timeout=5, interval=0.001)
    assert stale_cache.get("banner:1") == "new"


async def test_a_slow_load_with_nothing_held_is_awaited(stale_cache: MemoryCache) -> None:
    gate = asyncio.Event()

    async def slow() -> str:
        await gate.wait()
        return "new"

    read = asyncio.create_task(stale_cache.get_or_load("banner:9", slow, stale=AT_ONCE))
    # A gap on purpose, for a negative check: a read answered without the load would be
    # done by now. With the gate shut, a correct cache never is.
    await asyncio.sleep(0.01)
    assert not read.done()
    gate.set()
    assert await read == "new"


async def test_the_tiered_cache_answers_stale_while_degraded(clock: FakeClock) -> None:
    l1 = MemoryCache(max_entries=100, default_ttl=60.0, clock=clock, stale_for=3600.0)
    tiered = TieredCache(l1, None, degraded_ttl=5.0, is_degraded=lambda: True)
    assert await tiered.get_or_load("banner:1", fresh, ttl=300, stale=AT_ONCE) == "new"
    clock.advance(6)  # past the degraded TTL
    assert await tiered.get_or_load("banner:1", down, ttl=300, stale=AT_ONCE) == "new"
    with pytest.raises(Down):
        await tiered.get_or_load("banner:1", down, ttl=300)
