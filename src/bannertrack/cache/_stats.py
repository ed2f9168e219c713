"""The immutable statistics handed out of the cache, and why its counters are exact.

Every counter of a namespace (``_entry.Namespace``) except ``hits`` is changed only while
the cache lock is held, so plain integers are exact. ``hits`` is bumped on the lock-free
hit path, where ``x += 1`` on an attribute is a read-modify-write that two threads can
interleave and lose an update.
``next()`` on an ``itertools.count`` is a single C call that runs under the GIL without
releasing it, so it is an atomic increment at the cost of one builtin call; reading its
value back is done with ``next()`` too, and the reads are subtracted again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Final


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


def rate_of(hits: int, misses: int) -> float:
    gets = hits + misses
    return hits / gets if gets else 0.0
