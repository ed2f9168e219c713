"""The body of ``GET /api/v1/cache/stats``: every worker's figures and their sum.

The top-level figures are the original design's fields (``hits`` .. ``size``,
``hit_rate`` as a string such as ``"89.29%"``), now summed over the server's workers,
beside a numeric ``hit_ratio`` (0..1). ``workers`` lists each worker by pid with its own
figures and their age: the answering worker's are live (age 0), the others' come from
their latest snapshot (``bannertrack.bootstrap.workers``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from bannertrack.cache import STATS_FIELDS, CacheStats, NamespaceStats
from bannertrack.caching.keys import NAMESPACES

COUNTS = tuple(f for f in STATS_FIELDS if f != "hit_rate")  # hits .. size: they add up


class StatsRow(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of a namespace or of a whole cache since its last reset, and its size."""

    hits: int
    misses: int
    sets: int
    deletes: int
    expirations: int
    evictions: int
    size: int
    hit_rate: str  # "89.29%": the original design's form, kept for compatibility
    hit_ratio: float  # the same as a number, 0..1 (0 before the first read)


class CacheFigures(StatsRow, frozen=True, kw_only=True):
    """A whole cache: its row, its capacity and one row per namespace."""

    max_entries: int
    namespaces: dict[str, StatsRow]


class WorkerCacheStats(CacheFigures, frozen=True, kw_only=True):
    """One worker's cache."""

    pid: int
    age_seconds: float  # how old these figures are: 0 for the worker that answered


class CacheStatsBody(CacheFigures, frozen=True, kw_only=True):
    """The sum over ``workers`` (one entry per worker process of the server)."""

    enabled: bool  # false when BANNERTRACK_CACHE_ENABLED=false: every figure is then 0
    answered_by: int  # the pid of the worker that answered
    workers: list[WorkerCacheStats]


def _row(counts: Mapping[str, int]) -> StatsRow:
    return StatsRow(**_with_ratio(counts))  # type: ignore[arg-type]


def _with_ratio(counts: Mapping[str, int]) -> dict[str, object]:
    gets = counts["hits"] + counts["misses"]
    ratio = counts["hits"] / gets if gets else 0.0
    return {**{f: counts[f] for f in COUNTS}, "hit_rate": f"{ratio * 100:.2f}%", "hit_ratio": ratio}


def _counts(stats: CacheStats | NamespaceStats | None) -> dict[str, int]:
    return {f: 0 if stats is None else int(getattr(stats, f)) for f in COUNTS}


def _add(into: dict[str, int], more: Mapping[str, int]) -> None:
    for f in COUNTS:
        into[f] += more[f]


def _figures(stats: CacheStats | None) -> dict[str, object]:
    namespaces = {ns: _counts(s) for ns, s in (stats.namespaces.items() if stats else ())}
    for ns in NAMESPACES:  # every documented namespace appears, used or not
        namespaces.setdefault(ns, _counts(None))
    return {
        **_with_ratio(_counts(stats)),
        "max_entries": stats.max_entries if stats else 0,
        "namespaces": {ns: _row(c) for ns, c in sorted(namespaces.items())},
    }


def stats_body(
    enabled: bool, own_pid: int, workers: Iterable[tuple[int, float, CacheStats | None]]
) -> CacheStatsBody:
    """The body from (pid, age in seconds, that worker's stats) of every worker."""
    listed = [
        WorkerCacheStats(pid=pid, age_seconds=round(age, 3), **_figures(stats))  # type: ignore[arg-type]
        for pid, age, stats in sorted(workers, key=lambda w: w[0])
    ]
    total = _counts(None)
    namespaces: dict[str, dict[str, int]] = {}
    for worker in listed:
        _add(total, {f: getattr(worker, f) for f in COUNTS})
        for ns, row in worker.namespaces.items():
            _add(namespaces.setdefault(ns, _counts(None)), {f: getattr(row, f) for f in COUNTS})
    return CacheStatsBody(
        enabled=enabled,
        answered_by=own_pid,
        workers=listed,
        max_entries=sum(w.max_entries for w in listed),
        namespaces={ns: _row(c) for ns, c in sorted(namespaces.items())},
        **_with_ratio(total),  # type: ignore[arg-type]
    )
