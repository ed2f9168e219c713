"""What the cache panel shows: size, evictions and hit rates, recent and per namespace."""

from __future__ import annotations

from dataclasses import dataclass

from bannertrack.cache import CacheStats
from bannertrack.caching.keys import NAMESPACES
from bannertrack.dashboard.cache_history import CacheHistory

WINDOWS = ((60.0, "1 min"), (300.0, "5 min"), (600.0, "10 min"))
SPARK_W, SPARK_H = 240, 48


def _rate(r: float | None) -> str:
    return "\u2013" if r is None else f"{r * 100:.1f} %"


@dataclass(frozen=True, slots=True)
class NamespaceRow:
    name: str
    size: int
    hits: int
    misses: int
    evictions: int
    lifetime: str
    recent: str  # over the last 5 minutes


@dataclass(frozen=True, slots=True)
class RecentRate:
    label: str
    text: str
    lookups: int


@dataclass(frozen=True, slots=True)
class CachePanel:
    enabled: bool
    size: int = 0
    max_entries: int = 0
    evictions: int = 0
    lifetime: str = "\u2013"
    recent: tuple[RecentRate, ...] = ()
    rows: tuple[NamespaceRow, ...] = ()
    spark: str = ""  # SVG polyline points of the per-interval hit rates
    spark_rates: tuple[str, ...] = ()  # the same rates as text, for the table
    interval: float = 10.0


def _spark(rates: list[float | None]) -> str:
    if len(rates) < 2:
        return ""
    step = SPARK_W / (len(rates) - 1)
    return " ".join(
        f"{i * step:.1f},{SPARK_H - (r or 0.0) * SPARK_H:.1f}" for i, r in enumerate(rates)
    )


def cache_panel(stats: CacheStats | None, history: CacheHistory) -> CachePanel:
    if stats is None:
        return CachePanel(enabled=False)
    recent = [(label, history.recent(seconds)) for seconds, label in WINDOWS]
    five = recent[1][1]
    rows = []
    for name in sorted(set(NAMESPACES) | set(stats.namespaces)):
        ns = stats.namespaces.get(name)
        counts = five.namespaces.get(name) if five is not None else None
        rows.append(
            NamespaceRow(
                name=name,
                size=ns.size if ns else 0,
                hits=ns.hits if ns else 0,
                misses=ns.misses if ns else 0,
                evictions=ns.evictions if ns else 0,
                lifetime=_rate(ns.hit_rate if ns and ns.hits + ns.misses else None),
                recent=_rate(counts.hit_rate if counts else None),
            )
        )
    rates = history.hit_rates()
    return CachePanel(
        enabled=True,
        size=stats.size,
        max_entries=stats.max_entries,
        evictions=stats.evictions,
        lifetime=_rate(stats.hit_rate if stats.hits + stats.misses else None),
        recent=tuple(
            RecentRate(
                label,
                _rate(r.total.hit_rate if r else None),
                r.total.hits + r.total.misses if r else 0,
            )
            for label, r in recent
        ),
        rows=tuple(rows),
        spark=_spark(rates),
        spark_rates=tuple(_rate(r) for r in rates),
        interval=history.interval,
    )
