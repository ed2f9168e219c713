"""The ``Cache`` contract as one suite, run over every implementation (cachetools'
``CacheTestMixin`` idea): a test class inherits ``CacheContract`` and provides the
``cache`` fixture (built on the ``clock`` fixture) and, if its cache has a shared tier,
``spread`` (what the invalidation bus does after a local invalidation).

Time is the fake ``clock`` of the L1 store; a shared tier keeps real time, so no test
here expects a reload caused by TTL alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import pytest

from bannertrack.cache import NO_VALUE, Cache
from tests.support.waiting import wait_until


class ContractClock:
    """A monotonic clock that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class LoaderError(Exception):
    pass


def returning(value: object) -> Callable[[], Awaitable[object]]:
    async def load() -> object:
        return value

    return load


CAPACITY = 50
DEFAULT_TTL = 60.0


class CacheContract:
    """Everything ``Cache`` promises; subclasses only say how to build one."""

    @pytest.fixture
    def clock(self) -> ContractClock:
        return ContractClock()

    @pytest.fixture
    def cache(self, clock: ContractClock) -> Cache:
        """A cache of ``CAPACITY`` entries, ``DEFAULT_TTL`` seconds, on ``clock``."""
        raise NotImplementedError

    async def spread(self, keys: Sequence[str] = (), prefixes: Sequence[str] = ()) -> None:
        """Carry an invalidation past the local cache (a shared tier); nothing by default."""

    # --- store ------------------------------------------------------------------------

    def test_a_miss_is_no_value_and_falsy_values_are_hits(self, cache: Cache) -> None:
        assert cache.get("a:1") is NO_VALUE
        for key, value in (("a:none", None), ("a:zero", 0), ("a:empty", ""), ("a:t", ())):
            cache.set(key, value)
            assert cache.get(key) == value and cache.get(key) is not NO_VALUE
        assert len(cache) == 4

    def test_set_overwrites_and_no_value_cannot_be_stored(self, cache: Cache) -> None:
        cache.set("a:1", "one")
        cache.set("a:1", "uno")
        assert cache.get("a:1") == "uno"
        assert len(cache) == 1
        with pytest.raises(ValueError, match="NO_VALUE"):
            cache.set("a:2", NO_VALUE)

    def test_an_entry_lives_exactly_its_ttl(self, cache: Cache, clock: ContractClock) -> None:
        cache.set("a:short", 1, ttl=5.0)
        cache.set("a:default", 2)
        clock.advance(4.999)
        assert cache.get("a:short") == 1
        clock.advance(0.001)
        assert cache.get("a:short") is NO_VALUE
        assert "a:short" not in cache
        clock.advance(DEFAULT_TTL - 5.0 - 0.001)
        assert cache.get("a:default") == 2
        clock.advance(0.001)
        assert cache.get("a:default") is NO_VALUE

    def test_the_bound_holds(self, cache: Cache) -> None:
        for i in range(CAPACITY * 3):
            cache.set(f"a:{i}", i)
            assert len(cache) <= CAPACITY
        assert len(cache) == CAPACITY
        assert cache.stats().evictions == CAPACITY * 2

    def test_contains_and_len_count_neither_hits_nor_misses(self, cache: Cache) -> None:
        cache.set("a:1", 1)
        assert "a:1" in cache and "a:2" not in cache and 3 not in cache
        assert len(cache) == 1
        stats = cache.stats()
        assert (stats.hits, stats.misses) == (0, 0)

    # --- invalidation -----------------------------------------------------------------

    def test_delete_says_whether_a_live_entry_went(self, cache: Cache) -> None:
        cache.set("a:1", 1)
        assert cache.delete("a:1") is True
        assert cache.delete("a:1") is False
        assert cache.get("a:1") is NO_VALUE

    def test_delete_prefix_removes_matching_keys_only(self, cache: Cache) -> None:
        for key in ("top:1", "top:2", "topic:1", "banner:1"):
            cache.set(key, key)
        assert cache.delete_prefix("top:") == 2
        assert [k for k in ("top:1", "top:2", "topic:1", "banner:1") if k in cache] == [
            "topic:1",
            "banner:1",
        ]

    def test_clear_empties_and_counts(self, cache: Cache) -> None:
        for i in range(5):
            cache.set(f"a:{i}", i)
        assert cache.clear() == 5
        assert len(cache) == 0 and cache.get("a:0") is NO_VALUE

    # --- statistics -------------------------------------------------------------------

    def test_stats_count_hits_misses_sets_and_deletes(self, cache: Cache) -> None:
        cache.set("a:1", 1)
        cache.get("a:1")
        cache.get("a:1")
        cache.get("a:2")
        cache.delete("a:1")
        stats = cache.stats()
        assert (stats.hits, stats.misses, stats.sets, stats.deletes) == (2, 1, 1, 1)
        assert stats.hit_rate == pytest.approx(2 / 3)
        assert stats.namespaces["a"].hits == 2
        assert stats.max_entries == CAPACITY

    # --- loads ------------------------------------------------------------------------

    async def test_a_herd_runs_the_loader_once(self, cache: Cache) -> None:
        calls = 0
        gate = asyncio.Event()

        async def loader() -> str:
            nonlocal calls
            calls += 1
            await gate.wait()
            return "value"

        callers = [asyncio.create_task(cache.get_or_load("a:1", loader)) for _ in range(200)]
        await wait_until(lambda: cache.stats().misses == 200)  # every caller has joined
        gate.set()
        assert await asyncio.gather(*callers) == ["value"] * 200
        assert calls == 1
        assert cache.get("a:1") == "value"
        stats = cache.stats()
        assert (stats.misses, stats.sets) == (200, 1)

    async def test_a_hit_does_not_load(self, cache: Cache) -> None:
        cache.set("a:1", "cached")

        async def loader() -> str:
            raise AssertionError("must not load on a hit")

        assert await cache.get_or_load("a:1", loader) == "cached"
        assert cache.stats().hits == 1

    async def test_a_failure_reaches_every_waiter_and_caches_nothing(self, cache: Cache) -> None:
        gate = asyncio.Event()

        async def loader() -> str:
            await gate.wait()
            raise LoaderError("down")

        callers = [asyncio.create_task(cache.get_or_load("a:1", loader)) for _ in range(50)]
        await wait_until(lambda: cache.stats().misses == 50)  # every caller has joined
        gate.set()
        errors = await asyncio.gather(*callers, return_exceptions=True)
        assert all(isinstance(e, LoaderError) for e in errors)
        assert len({id(e) for e in errors}) == 1
        assert cache.get("a:1") is NO_VALUE
        assert await cache.get_or_load("a:1", returning("recovered")) == "recovered"

    async def test_a_cancelled_waiter_does_not_cancel_the_load(self, cache: Cache) -> None:
        gate = asyncio.Event()

        async def loader() -> str:
            await gate.wait()
            return "value"

        first = asyncio.create_task(cache.get_or_load("a:1", loader))
        others = [asyncio.create_task(cache.get_or_load("a:1", loader)) for _ in range(5)]
        await wait_until(lambda: cache.stats().misses == 6)  # every caller has joined
        first.cancel()
        await asyncio.wait({first})
        gate.set()
        assert await asyncio.gather(*others) == ["value"] * 5
        assert cache.get("a:1") == "value"

    async def test_a_loaded_value_keeps_the_given_ttl(
        self, cache: Cache, clock: ContractClock
    ) -> None:
        assert await cache.get_or_load("a:1", returning(1), ttl=5.0) == 1
        clock.advance(4.9)
        assert cache.get("a:1") == 1
        clock.advance(0.1)
        assert cache.get("a:1") is NO_VALUE

    async def test_a_loader_returning_no_value_stores_nothing(self, cache: Cache) -> None:
        assert await cache.get_or_load("a:1", returning(NO_VALUE)) is NO_VALUE
        assert "a:1" not in cache

    async def test_a_loader_waiting_for_its_own_key_fails(self, cache: Cache) -> None:
        async def loader() -> object:
            return await cache.get_or_load("a:1", loader)

        with pytest.raises(RuntimeError, match="its own key"):
            await cache.get_or_load("a:1", loader)

    @pytest.mark.parametrize("how", ["delete", "delete_prefix", "clear", "set"])
    async def test_a_load_started_before_an_invalidation_never_stores(
        self, cache: Cache, how: str
    ) -> None:
        key = "a:7"
        old_gate, running = asyncio.Event(), asyncio.Event()

        async def stale() -> str:
            running.set()
            await old_gate.wait()
            return "stale"

        early = asyncio.create_task(cache.get_or_load(key, stale))
        await wait_until(running.is_set)  # the stale load is running and waiting
        if how == "delete":
            cache.delete(key)
            await self.spread(keys=[key])
        elif how == "delete_prefix":
            cache.delete_prefix("a:")
            await self.spread(prefixes=["a:"])
        elif how == "clear":
            cache.clear()
            await self.spread(prefixes=[""])
        else:
            cache.set(key, "written")
        # A caller after the invalidation does not join the old flight.
        late = await cache.get_or_load(key, returning("fresh"))
        old_gate.set()
        assert await early == "stale"  # its own waiters still get it...
        expected = "written" if how == "set" else "fresh"
        assert late == expected
        assert cache.get(key) == expected  # ...but it was never stored
