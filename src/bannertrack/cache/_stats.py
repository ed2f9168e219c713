"""Counters kept per namespace, and the immutable snapshots handed out of the cache.

Every counter except ``hits`` is changed only while the cache lock is held, so plain
integers are exact. ``hits`` is bumped on the lock-free hit path, where ``x += 1`` on an
attribute is a read-modify-write that two threads can interleave and lose an update.
``next()`` on an ``itertools.count`` is a single C call that runs under the GIL without
releasing it, so it is an atomic increment at the cost of one builtin call; reading its
value back is done with ``next()`` too, and the reads are subtracted again.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from bannertrack.cache._sieve import Entry


def namespace_of(key: str) -> str:
    """The part of ``key`` before the first ``:``; keys without one share ``""``."""
    head, sep, _ = key.partition(":")
    return head if sep else ""


@dataclass(frozen=True, slots=True)
class NamespaceStats:
    """Counters of one namespace since the last reset, and its current size."""

    hits: int
    misses: int
    sets: int
    deletes: int
    expirations: int
    evictions: int
    size: int
    hit_rate: float


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A consistent snapshot: all fields were read under one acquisition of the lock.

    ``hit_rate`` is ``hits / (hits + misses)`` as a float in ``0..1`` (``0.0`` before the
    first get); formatting it as a percentage is the API's job, not the engine's.
    """

    hits: int
    misses: int
    sets: int
    deletes: int
    expirations: int
    evictions: int
    size: int
    max_entries: int
    hit_rate: float
    namespaces: Mapping[str, NamespaceStats]


STATS_FIELDS: Final = tuple(f.name for f in fields(NamespaceStats))
"""The fields of every statistics row, a namespace's or the totals (which add
``max_entries``): the admin API's JSON, the metrics and the CLI table are named by it."""

COUNTER_FIELDS: Final = tuple(f for f in STATS_FIELDS if f not in ("size", "hit_rate"))
"""The fields that count events; ``size`` is a gauge and ``hit_rate`` derived."""


def _rate(hits: int, misses: int) -> float:
    gets = hits + misses
    return hits / gets if gets else 0.0


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
            hit_rate=_rate(hits, self.misses),
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
        hit_rate=_rate(hits, misses),
        namespaces=MappingProxyType(per_ns),
    )
