"""Statistics are exact, overall and per namespace (the part of the key before ':')."""

from __future__ import annotations

from cache_fakes import FakeClock

from bannertrack.cache import NO_VALUE, MemoryCache


def test_every_counter_overall_and_per_namespace(cache: MemoryCache, clock: FakeClock) -> None:
    cache.set("banner:1", "b1")
    cache.set("banner:2", "b2", ttl=1.0)
    cache.set("top_banners:10", ("b1",))
    cache.set("plain", 0)  # no ':' -> namespace ""
    cache.set("banner:1", "b1'")  # overwrite is a set too
    cache.get("banner:1")
    cache.get("banner:1")
    cache.get("banner:404")
    cache.get("top_banners:10")
    cache.get("plain")
    cache.get("click_stats:1")
    clock.advance(1.0)
    cache.get("banner:2")  # expired: a miss and an expiration
    assert cache.delete("top_banners:10")
    assert not cache.delete("top_banners:10")

    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.sets, stats.deletes) == (4, 3, 5, 1)
    assert (stats.expirations, stats.evictions, stats.size) == (1, 0, 2)
    assert stats.max_entries == 100
    assert stats.hit_rate == 4 / 7

    banner = stats.namespaces["banner"]
    assert (banner.hits, banner.misses, banner.sets, banner.expirations) == (2, 2, 3, 1)
    assert (banner.size, banner.hit_rate) == (1, 0.5)
    top = stats.namespaces["top_banners"]
    assert (top.hits, top.sets, top.deletes, top.size) == (1, 1, 1, 0)
    assert stats.namespaces[""].hits == 1
    assert stats.namespaces["click_stats"].misses == 1
    assert sum(ns.size for ns in stats.namespaces.values()) == stats.size == len(cache)


def test_hit_rate_before_any_get_is_zero(cache: MemoryCache) -> None:
    assert cache.stats().hit_rate == 0.0


def test_only_the_first_colon_splits(cache: MemoryCache) -> None:
    cache.set("a:b:c", 1)
    assert set(cache.stats().namespaces) == {"a"}


def test_reset_zeroes_counters_but_keeps_sizes(cache: MemoryCache) -> None:
    cache.set("banner:1", 1)
    cache.get("banner:1")
    cache.get("banner:2")
    cache.reset_stats()
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.sets, stats.size) == (0, 0, 0, 1)
    assert stats.namespaces["banner"].size == 1
    cache.get("banner:1")
    assert cache.stats().hits == 1


def test_reading_stats_does_not_change_them(cache: MemoryCache) -> None:
    cache.set("k:1", 1)
    cache.get("k:1")
    first = cache.stats()
    assert [cache.stats() for _ in range(5)][-1] == first


def test_prefix_delete_counts_live_entries_and_expirations_apart(
    cache: MemoryCache, clock: FakeClock
) -> None:
    cache.set("top_banners:5", 1)
    cache.set("top_banners:10", 2, ttl=1.0)
    cache.set("banner:1", 3)
    clock.advance(1.0)
    assert cache.delete_prefix("top_banners:") == 1
    stats = cache.stats()
    assert (stats.deletes, stats.expirations, stats.size) == (1, 1, 1)


def test_clear_counts_what_it_removed(cache: MemoryCache, clock: FakeClock) -> None:
    cache.set("a:1", 1)
    cache.set("b:1", 1, ttl=1.0)
    clock.advance(1.0)
    assert cache.clear() == 1
    stats = cache.stats()
    assert (stats.deletes, stats.expirations, stats.size, len(cache)) == (1, 1, 0, 0)
    assert stats.namespaces["a"].size == 0


def test_delete_prefix_matches_keys_not_just_namespaces(cache: MemoryCache) -> None:
    for key in ("top_banners:5", "top_banners:50", "top_banners:10", "topic:1", "top", "tops"):
        cache.set(key, key)
    assert cache.delete_prefix("top_banners:5") == 2
    assert cache.delete_prefix("top") == 4
    assert len(cache) == 0
    cache.set("x:1", 1)
    cache.set("y", 1)
    assert cache.delete_prefix("") == 2
    assert cache.get("x:1") is NO_VALUE
