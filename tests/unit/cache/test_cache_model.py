"""Operation sequences from hypothesis, checked against a dict model and a fake clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from cache_fakes import FakeClock
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from bannertrack.cache import NO_VALUE, MemoryCache

keys = st.sampled_from(
    ["banner:1", "banner:2", "banner:12", "top_banners:5", "top_banners:10", "plain", "pl"]
)
prefixes = st.sampled_from(["banner:", "banner:1", "top_banners:", "top", "p", "", "x:"])
ttls = st.one_of(st.none(), st.sampled_from([0.5, 1.0, 2.5, 10.0]))
values = st.one_of(st.none(), st.integers(), st.text(max_size=3))


@dataclass
class Counters:
    hits: int = 0
    misses: int = 0
    sets: int = 0
    deletes: int = 0
    expirations: int = 0


@dataclass
class Model:
    """What a cache without a bound must do; every expiry found is counted where found."""

    now: float
    default_ttl: float
    stored: dict[str, tuple[object, float]] = field(default_factory=dict)
    counters: dict[str, Counters] = field(default_factory=dict)

    def ns(self, key: str) -> Counters:
        name = key.partition(":")[0] if ":" in key else ""
        return self.counters.setdefault(name, Counters())

    def live(self, key: str) -> bool:
        return key in self.stored and self.stored[key][1] > self.now

    def drop(self, key: str) -> bool:
        """Remove a stored key; True if it was live, else counts an expiration."""
        if self.live(key):
            del self.stored[key]
            self.ns(key).deletes += 1
            return True
        del self.stored[key]
        self.ns(key).expirations += 1
        return False


class CacheMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.cache = MemoryCache(max_entries=1000, default_ttl=5.0, clock=self.clock)
        self.model = Model(now=self.clock.now, default_ttl=5.0)

    @rule(key=keys, value=values, ttl=ttls)
    def set(self, key: str, value: object, ttl: float | None) -> None:
        self.cache.set(key, value, ttl)
        if key in self.model.stored and not self.model.live(key):
            del self.model.stored[key]
            self.model.ns(key).expirations += 1
        seconds = self.model.default_ttl if ttl is None else ttl
        self.model.stored[key] = (value, self.model.now + seconds)
        self.model.ns(key).sets += 1

    @rule(key=keys)
    def get(self, key: str) -> None:
        got = self.cache.get(key)
        if self.model.live(key):
            assert got == self.model.stored[key][0]
            self.model.ns(key).hits += 1
        else:
            assert got is NO_VALUE
            if key in self.model.stored:
                del self.model.stored[key]
                self.model.ns(key).expirations += 1
            self.model.ns(key).misses += 1

    @rule(key=keys)
    def delete(self, key: str) -> None:
        expected = self.model.drop(key) if key in self.model.stored else False
        assert self.cache.delete(key) is expected

    @rule(prefix=prefixes)
    def delete_prefix(self, prefix: str) -> None:
        matching = [k for k in self.model.stored if k.startswith(prefix)]
        expected = sum(self.model.drop(k) for k in matching)
        assert self.cache.delete_prefix(prefix) == expected

    @rule()
    def clear(self) -> None:
        expected = sum(self.model.drop(k) for k in list(self.model.stored))
        assert self.cache.clear() == expected

    @rule(seconds=st.sampled_from([0.1, 0.5, 1.0, 3.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.model.now = self.clock.now

    @rule()
    def sweep(self) -> None:
        expired = [k for k in self.model.stored if not self.model.live(k)]
        for k in expired:
            self.model.drop(k)
        assert self.cache.cleanup_expired() == len(expired)

    @rule()
    def reset_stats(self) -> None:
        self.cache.reset_stats()
        self.model.counters = {name: Counters() for name in self.model.counters}

    @invariant()
    def stats_match_the_model(self) -> None:
        stats = self.cache.stats()
        assert len(self.cache) == stats.size == len(self.model.stored)
        for name, counters in self.model.counters.items():
            got = stats.namespaces.get(name)
            if got is None:
                assert counters == Counters()
                continue
            assert (got.hits, got.misses, got.sets, got.deletes, got.expirations) == (
                counters.hits,
                counters.misses,
                counters.sets,
                counters.deletes,
                counters.expirations,
            ), name
            size = sum(1 for k in self.model.stored if self.model.ns(k) is counters)
            assert got.size == size
        assert stats.hits == sum(c.hits for c in self.model.counters.values())
        assert stats.evictions == 0


CacheMachine.TestCase.settings = settings(max_examples=120, stateful_step_count=40, deadline=None)
TestCacheAgainstModel = CacheMachine.TestCase


class BoundedCacheMachine(RuleBasedStateMachine):
    """With a bound, which key goes is SIEVE's choice; what comes back must still be
    the latest value written and never an expired one."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.cache = MemoryCache(max_entries=3, default_ttl=2.0, clock=self.clock)
        self.latest: dict[str, tuple[object, float]] = {}

    @rule(key=keys, value=st.integers(), ttl=ttls)
    def set(self, key: str, value: int, ttl: float | None) -> None:
        self.cache.set(key, value, ttl)
        self.latest[key] = (value, self.clock.now + (2.0 if ttl is None else ttl))

    @rule(key=keys)
    def get(self, key: str) -> None:
        got = self.cache.get(key)
        if got is not NO_VALUE:
            value, expires = self.latest[key]
            assert got == value
            assert expires > self.clock.now

    @rule(key=keys)
    def delete(self, key: str) -> None:
        self.cache.delete(key)
        self.latest.pop(key, None)

    @rule(seconds=st.sampled_from([0.5, 1.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def bounded_and_consistent(self) -> None:
        stats = self.cache.stats()
        assert len(self.cache) == stats.size <= 3
        assert len(self.cache.eviction_order()) == len(self.cache)
        self.cache.verify()


BoundedCacheMachine.TestCase.settings = settings(
    max_examples=80, stateful_step_count=40, deadline=None
)
TestBoundedCacheAgainstModel = BoundedCacheMachine.TestCase
