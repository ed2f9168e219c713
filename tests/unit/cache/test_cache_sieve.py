"""Bound and SIEVE eviction, checked against a list-based transcription of the paper."""

from __future__ import annotations

from cache_fakes import FakeClock
from hypothesis import given, settings
from hypothesis import strategies as st

from bannertrack.cache import NO_VALUE, MemoryCache


class ReferenceSieve:
    """SIEVE as the NSDI'24 paper's pseudo-code states it: slow, obviously right."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.queue: list[str] = []  # index 0 is the tail (oldest)
        self.visited: dict[str, bool] = {}
        self.hand: int | None = None

    def hit(self, key: str) -> bool:
        if key in self.visited:
            self.visited[key] = True
            return True
        return False

    def insert(self, key: str) -> None:
        if self.hit(key):
            return
        if len(self.queue) == self.capacity:
            self._evict()
        self.queue.append(key)
        self.visited[key] = False

    def delete(self, key: str) -> None:
        if key not in self.visited:
            return
        index = self.queue.index(key)
        self._remove_at(index)

    def _evict(self) -> None:
        index = self.hand if self.hand is not None else 0
        while self.visited[self.queue[index]]:
            self.visited[self.queue[index]] = False
            index = index + 1 if index + 1 < len(self.queue) else 0
        self.hand = index  # the hand moves on to the entry after the victim
        self._remove_at(index)

    def _remove_at(self, index: int) -> None:
        key = self.queue.pop(index)
        del self.visited[key]
        if self.hand is not None:
            if index < self.hand:
                self.hand -= 1
            if self.hand >= len(self.queue):
                self.hand = None


operations = st.lists(
    st.tuples(st.sampled_from(["get", "set", "delete"]), st.integers(0, 11)),
    max_size=200,
)


@settings(max_examples=150, deadline=None)
@given(capacity=st.integers(1, 8), ops=operations)
def test_eviction_matches_the_reference(capacity: int, ops: list[tuple[str, int]]) -> None:
    cache = MemoryCache(max_entries=capacity, default_ttl=None)
    model = ReferenceSieve(capacity)
    for op, n in ops:
        key = f"k:{n}"
        if op == "get":
            assert (cache.get(key) is not NO_VALUE) == model.hit(key)
        elif op == "set":
            cache.set(key, n)
            model.insert(key)
        else:
            cache.delete(key)
            model.delete(key)
        assert cache.eviction_order() == model.queue
        assert len(cache) == len(model.queue) <= capacity


def test_visited_entries_survive_and_the_first_unvisited_goes() -> None:
    cache = MemoryCache(max_entries=3, default_ttl=None)
    for key in ("a", "b", "c"):
        cache.set(key, key)
    cache.get("a")
    cache.get("b")
    cache.set("d", "d")  # hand passes a and b (clearing them) and evicts c
    assert cache.get("c") is NO_VALUE
    assert cache.eviction_order() == ["a", "b", "d"]
    # c was the head, so the hand wraps to the tail: a lost its bit on the first pass.
    cache.set("e", "e")
    assert cache.eviction_order() == ["b", "d", "e"]
    assert cache.stats().evictions == 2


def test_when_all_are_visited_the_hand_wraps_and_evicts_the_oldest() -> None:
    cache = MemoryCache(max_entries=3, default_ttl=None)
    for key in ("a", "b", "c"):
        cache.set(key, key)
        cache.get(key)
    cache.set("d", "d")
    assert cache.eviction_order() == ["b", "c", "d"]


def test_the_hand_takes_an_expired_entry_even_if_visited() -> None:
    clock = FakeClock()
    cache = MemoryCache(max_entries=3, default_ttl=100.0, clock=clock)
    cache.set("ns:a", 1)
    cache.set("ns:b", 2, ttl=1.0)
    cache.set("ns:c", 3)
    for key in ("ns:a", "ns:b", "ns:c"):
        cache.get(key)
    clock.advance(1.0)
    cache.set("ns:d", 4)
    assert cache.eviction_order() == ["ns:a", "ns:c", "ns:d"]
    stats = cache.stats()
    assert (stats.evictions, stats.expirations) == (0, 1)


def test_size_never_exceeds_the_bound_and_evictions_are_counted_per_namespace() -> None:
    cache = MemoryCache(max_entries=50, default_ttl=None)
    for i in range(200):
        cache.set(f"{'even' if i % 2 == 0 else 'odd'}:{i}", i)
        assert len(cache) <= 50
    stats = cache.stats()
    assert stats.size == 50
    assert stats.evictions == 150
    assert stats.sets == 200
    assert stats.namespaces["even"].evictions + stats.namespaces["odd"].evictions == 150
    assert stats.namespaces["even"].size + stats.namespaces["odd"].size == 50


def test_overwrite_does_not_grow_or_evict() -> None:
    cache = MemoryCache(max_entries=2, default_ttl=None)
    cache.set("a", 1)
    cache.set("b", 2)
    cache.set("a", 3)
    assert (len(cache), cache.get("a"), cache.get("b")) == (2, 3, 2)
    assert cache.stats().evictions == 0
