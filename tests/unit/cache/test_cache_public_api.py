"""The public surface stays small and honest (the httpx test_exported_members idea)."""

from __future__ import annotations

import inspect

import pytest

import bannertrack.cache as cache_pkg
from bannertrack.cache import (
    COUNTER_FIELDS,
    NO_VALUE,
    STATS_FIELDS,
    Cache,
    CacheStats,
    MemoryCache,
    NamespaceStats,
    TieredCache,
)


def test_all_is_exactly_the_intended_names() -> None:
    assert sorted(cache_pkg.__all__) == sorted(
        [
            "Cache",
            "MemoryCache",
            "CacheStats",
            "NamespaceStats",
            "NO_VALUE",
            "COUNTER_FIELDS",
            "STATS_FIELDS",
            "RedisTier",
            "Stale",
            "StructCodec",
            "TieredCache",
        ]
    )
    public = {name for name in vars(cache_pkg) if not name.startswith("_")}
    assert public == set(cache_pkg.__all__)


def protocol_members(proto: type) -> list[str]:
    return [
        name
        for name, member in vars(proto).items()
        if callable(member) and (not name.startswith("_") or name in ("__contains__", "__len__"))
    ]


@pytest.mark.parametrize("impl", [MemoryCache, TieredCache])
def test_implementations_match_the_protocol_signatures(impl: type) -> None:
    """isinstance() on a runtime Protocol only checks that the names exist; this checks
    parameters, defaults, annotations and async-ness, member by member."""
    members = protocol_members(Cache)
    assert {"get", "set", "delete", "delete_prefix", "clear", "stats", "get_or_load"} <= set(
        members
    )
    for name in members:
        want, have = getattr(Cache, name), getattr(impl, name)
        assert inspect.signature(have) == inspect.signature(want), f"{impl.__name__}.{name}"
        assert inspect.iscoroutinefunction(have) == inspect.iscoroutinefunction(want), name


def test_the_runtime_check_tells_a_cache_from_something_else() -> None:
    assert isinstance(MemoryCache(), Cache)
    assert isinstance(TieredCache(MemoryCache()), Cache)
    assert not isinstance({}, Cache)  # a mapping has get and __len__, not the rest


def test_no_value_is_a_falsy_singleton_distinct_from_none() -> None:
    assert not NO_VALUE
    assert NO_VALUE is not None
    assert repr(NO_VALUE) == str(NO_VALUE) == "NO_VALUE"


def test_stats_are_frozen_snapshots() -> None:
    cache = MemoryCache()
    cache.set("a:1", 1)
    stats = cache.stats()
    assert isinstance(stats, CacheStats)
    assert isinstance(stats.namespaces["a"], NamespaceStats)
    cache.set("a:2", 2)
    assert stats.size == 1  # the snapshot does not follow the cache
    try:
        stats.namespaces["b"] = stats.namespaces["a"]  # type: ignore[index]
    except TypeError:
        pass
    else:  # pragma: no cover
        raise AssertionError("namespaces must be read-only")


def test_the_stats_field_names_are_the_fields_of_the_snapshots() -> None:
    assert (*COUNTER_FIELDS, "size", "hit_rate") == STATS_FIELDS
    assert COUNTER_FIELDS == ("hits", "misses", "sets", "deletes", "expirations", "evictions")
    totals = set(CacheStats.__dataclass_fields__)
    assert totals == {*STATS_FIELDS, "max_entries", "namespaces"}


def test_get_is_the_fast_closure_but_the_class_documents_it() -> None:
    cache = MemoryCache()
    cache.set("k", "v")
    assert MemoryCache.get(cache, "k") == "v"
    assert cache.get("k") == "v"
    assert MemoryCache.get.__doc__ and "NO_VALUE" in MemoryCache.get.__doc__
    assert "get" in vars(cache)  # the instance answers through the closure
