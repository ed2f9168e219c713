"""A cache entry and the bookkeeping of its namespace, which point at each other.

An entry keeps a reference to its namespace and to that namespace's hit counter, so the
hit path never splits a key; a namespace keeps its entries, for prefix deletes. The two
types refer to each other, so they live in one module: ``_sieve`` links entries into its
queue, and ``snapshot`` here turns namespaces into the values of ``_stats``.

Every counter except ``hits`` is changed only while the cache lock is held; see
``_stats`` for why ``hits`` is an ``itertools.count``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from types import MappingProxyType

from bannertrack.cache._stats import CacheStats, NamespaceStats, rate_of


class Entry:
    """A stored value, its deadline and its place in the SIEVE queue.

    ``hits`` is the namespace's hit counter, copied here so the hit path reaches it with
    one attribute load instead of two. ``stale_until`` is how long the value may still
    answer a failed load after ``expires`` (stale-if-error, ``_stale``); ``cap_ttl``
    shortens ``expires`` only.
    """

    __slots__ = (
        "expires",
        "hits",
        "key",
        "newer",
        "ns",
        "older",
        "stale_until",
        "value",
        "visited",
    )

    def __init__(self, key: str, value: object, expires: float, ns: Namespace) -> None:
        self.key = key
        self.value = value
        self.expires = expires
        self.stale_until = expires
        self.visited = False
        self.ns = ns
        self.hits: itertools.count[int] = ns.hit_counter
        self.newer: Entry | None = None
        self.older: Entry | None = None


class Namespace:
    """Mutable bookkeeping of one namespace: its entries (for prefix deletes) and counters.

    Entries keep a reference to their namespace and to its hit counter, so the hit path
    never splits a key.
    """

    __slots__ = (
        "deletes",
        "entries",
        "evictions",
        "expirations",
        "hit_base",
        "hit_counter",
        "hit_reads",
        "misses",
        "name",
        "sets",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.entries: dict[str, Entry] = {}
        self.hit_counter = itertools.count()
        # Each read of hit_counter consumes one value; hit_reads says how many, and
        # hit_base is the hit count at the last reset. Both change under the lock only.
        self.hit_reads = 0
        self.hit_base = 0
        self.misses = 0
        self.sets = 0
        self.deletes = 0
        self.expirations = 0
        self.evictions = 0

    def _hits_total(self) -> int:
        """Hits since creation; call with the cache lock held."""
        total = next(self.hit_counter) - self.hit_reads
        self.hit_reads += 1
        return total

    def hits(self) -> int:
        """Hits since the last reset; call with the cache lock held."""
        return self._hits_total() - self.hit_base

    def reset(self) -> None:
        """Zero the counters (not the size); call with the cache lock held."""
        self.hit_base = self._hits_total()
        self.misses = self.sets = self.deletes = self.expirations = self.evictions = 0

    def snapshot(self) -> NamespaceStats:
        hits = self.hits()
        return NamespaceStats(
            hits=hits,
            misses=self.misses,
            sets=self.sets,
            deletes=self.deletes,
            expirations=self.expirations,
            evictions=self.evictions,
            size=len(self.entries),
            hit_rate=rate_of(hits, self.misses),
        )


def snapshot(namespaces: Mapping[str, Namespace], size: int, max_entries: int) -> CacheStats:
    """Build the totals from the namespaces; call with the cache lock held."""
    per_ns = {name: ns.snapshot() for name, ns in namespaces.items()}
    hits = sum(s.hits for s in per_ns.values())
    misses = sum(s.misses for s in per_ns.values())
    return CacheStats(
        hits=hits,
        misses=misses,
        sets=sum(s.sets for s in per_ns.values()),
        deletes=sum(s.deletes for s in per_ns.values()),
        expirations=sum(s.expirations for s in per_ns.values()),
        evictions=sum(s.evictions for s in per_ns.values()),
        size=size,
        max_entries=max_entries,
        hit_rate=rate_of(hits, misses),
        namespaces=MappingProxyType(per_ns),
    )
