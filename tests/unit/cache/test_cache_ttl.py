"""TTL: a fake clock moves time; nothing here sleeps."""

from __future__ import annotations

import math

import pytest
from cache_fakes import FakeClock

from bannertrack.cache import NO_VALUE, MemoryCache


def test_entry_lives_until_its_deadline_and_not_a_moment_longer(
    cache: MemoryCache, clock: FakeClock
) -> None:
    cache.set("banner:1", "b1", ttl=10.0)
    clock.advance(9.999)
    assert cache.get("banner:1") == "b1"
    clock.advance(0.001)
    assert cache.get("banner:1") is NO_VALUE


def test_default_ttl_applies_when_ttl_is_none(cache: MemoryCache, clock: FakeClock) -> None:
    cache.set("banner:1", "b1")
    clock.advance(59.0)
    assert cache.get("banner:1") == "b1"
    clock.advance(1.0)
    assert cache.get("banner:1") is NO_VALUE


def test_no_default_ttl_means_never_expires(clock: FakeClock) -> None:
    cache = MemoryCache(default_ttl=None, clock=clock)
    cache.set("k", "v")
    clock.advance(1e12)
    assert cache.get("k") == "v"
    cache.set("short", "v", ttl=1.0)
    clock.advance(1.0)
    assert cache.get("short") is NO_VALUE


def test_cached_none_and_falsy_values_are_hits(cache: MemoryCache) -> None:
    for key, value in [("n:none", None), ("n:zero", 0), ("n:empty", ()), ("n:false", False)]:
        cache.set(key, value)
        assert cache.get(key) is value
    assert cache.stats().hits == 4


def test_overwrite_restarts_the_ttl(cache: MemoryCache, clock: FakeClock) -> None:
    cache.set("k", 1, ttl=10.0)
    clock.advance(8.0)
    cache.set("k", 2, ttl=10.0)
    clock.advance(8.0)
    assert cache.get("k") == 2


@pytest.mark.parametrize("ttl", [0.0, -1.0, math.nan])
def test_non_positive_ttl_is_rejected(cache: MemoryCache, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        cache.set("k", 1, ttl=ttl)
    assert len(cache) == 0


def test_infinite_ttl_is_allowed(cache: MemoryCache, clock: FakeClock) -> None:
    cache.set("k", 1, ttl=math.inf)
    clock.advance(1e15)
    assert cache.get("k") == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"max_entries": 0}, {"default_ttl": 0.0}, {"cleanup_interval": 0.0}],
)
def test_bad_configuration_is_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        MemoryCache(**kwargs)  # type: ignore[arg-type]


def test_no_value_cannot_be_stored(cache: MemoryCache) -> None:
    with pytest.raises(ValueError, match="NO_VALUE"):
        cache.set("k", NO_VALUE)


def test_expired_entry_found_by_get_is_removed_and_counted(
    cache: MemoryCache, clock: FakeClock
) -> None:
    cache.set("banner:1", 1, ttl=1.0)
    clock.advance(1.0)
    assert len(cache) == 1  # still stored: nobody has looked yet
    assert cache.get("banner:1") is NO_VALUE
    stats = cache.stats()
    assert (stats.expirations, stats.misses, stats.size, len(cache)) == (1, 1, 0, 0)
    assert stats.namespaces["banner"].expirations == 1


def test_sweep_removes_only_expired_entries(clock: FakeClock) -> None:
    cache = MemoryCache(max_entries=10_000, clock=clock)
    for i in range(3000):  # more than one sweep chunk
        cache.set(f"short:{i}", i, ttl=1.0)
    for i in range(500):
        cache.set(f"long:{i}", i, ttl=100.0)
    clock.advance(1.0)
    assert cache.cleanup_expired() == 3000
    assert len(cache) == 500
    stats = cache.stats()
    assert stats.expirations == 3000
    assert stats.namespaces["short"].size == 0
    assert stats.namespaces["long"].size == 500
    assert cache.cleanup_expired() == 0


def test_sweep_yields_between_chunks(clock: FakeClock) -> None:
    cache = MemoryCache(max_entries=10_000, clock=clock)
    for i in range(2500):
        cache.set(f"k:{i}", i, ttl=1.0)
    clock.advance(2.0)
    chunks = list(cache._sweep_chunks())
    assert len(chunks) == 3
    assert sum(chunks) == 2500


def test_sweep_skips_entries_refreshed_during_the_sweep(clock: FakeClock) -> None:
    cache = MemoryCache(max_entries=10_000, clock=clock)
    for i in range(2048):
        cache.set(f"k:{i}", i, ttl=1.0)
    clock.advance(1.0)
    sweep = cache._sweep_chunks()
    assert next(sweep) == 1024
    cache.set("k:2047", "fresh", ttl=10.0)  # overwritten between two chunks
    assert sum(sweep) == 1023
    assert cache.get("k:2047") == "fresh"


def test_cap_ttl_shortens_long_lives_only(cache: MemoryCache, clock: FakeClock) -> None:
    cache.set("a:long", 1, ttl=300)
    cache.set("a:short", 2, ttl=2)
    assert cache.cap_ttl(5) == 1
    clock.advance(4.9)
    assert cache.get("a:long") == 1 and cache.get("a:short") is NO_VALUE
    clock.advance(0.2)
    assert cache.get("a:long") is NO_VALUE
