"""Recent cache hit rates: periodic snapshots of the counters in a bounded ring buffer.

The engine keeps counters since start (or the last reset), so its ``hit_rate`` is a
lifetime average that hardly moves after a while. The dashboard wants "how is it doing
now": the hit rate over the last minutes is the difference of two snapshots,
``Δhits / (Δhits + Δmisses)``. A snapshot is a handful of integers per namespace, taken
every ``interval`` seconds; ``keep`` of them bound the memory (60 x 10 s = 10 minutes).
A counter that went down (stats were reset) restarts its difference from zero.

The sampling loop is a ``tasks.BackgroundTask`` running ``tasks.every``: stopping it
never swallows a cancellation aimed at whoever stops it, and its ``sleep`` is a
parameter, so a test drives it with fake time.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bannertrack.cache import CacheStats
from bannertrack.tasks import BackgroundTask, Lifecycle, Sleep, every

log = logging.getLogger("bannertrack.dashboard")


@dataclass(frozen=True, slots=True)
class Counts:
    hits: int
    misses: int
    evictions: int

    def since(self, earlier: Counts) -> Counts:
        def delta(now: int, then: int) -> int:
            return now - then if now >= then else now

        return Counts(
            delta(self.hits, earlier.hits),
            delta(self.misses, earlier.misses),
            delta(self.evictions, earlier.evictions),
        )

    @property
    def hit_rate(self) -> float | None:
        looked = self.hits + self.misses
        return self.hits / looked if looked else None


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float  # monotonic seconds
    total: Counts
    namespaces: Mapping[str, Counts]

    @classmethod
    def of(cls, at: float, stats: CacheStats) -> Snapshot:
        return cls(
            at,
            Counts(stats.hits, stats.misses, stats.evictions),
            {n: Counts(s.hits, s.misses, s.evictions) for n, s in stats.namespaces.items()},
        )


@dataclass(frozen=True, slots=True)
class Recent:
    """Counts over the last ``seconds`` (as far back as the buffer reaches)."""

    seconds: float
    total: Counts
    namespaces: Mapping[str, Counts]


class CacheHistory(Lifecycle):
    def __init__(
        self,
        stats: Callable[[], CacheStats | None],
        *,
        interval: float = 10.0,
        keep: int = 60,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._stats = stats
        self.interval = interval
        self._clock = clock
        self._ring: deque[Snapshot] = deque(maxlen=keep)
        self._task = BackgroundTask(
            every(interval, self._sample, on_error=_failed, sleep=sleep),
            name="bannertrack-cache-history",
        )

    def __len__(self) -> int:
        return len(self._ring)

    def sample(self) -> None:
        stats = self._stats()
        if stats is not None:
            self._ring.append(Snapshot.of(self._clock(), stats))

    def recent(self, seconds: float) -> Recent | None:
        """Counts from the oldest snapshot within ``seconds`` up to the live counters."""
        stats = self._stats()
        if stats is None:
            return None
        now = Snapshot.of(self._clock(), stats)
        base = next((s for s in self._ring if now.at - s.at <= seconds), None)
        if base is None:
            return None
        return Recent(
            seconds=now.at - base.at,
            total=now.total.since(base.total),
            namespaces={
                n: c.since(base.namespaces.get(n, Counts(0, 0, 0)))
                for n, c in now.namespaces.items()
            },
        )

    def hit_rates(self) -> list[float | None]:
        """The hit rate of each interval between successive snapshots, oldest first."""
        ring = list(self._ring)
        return [b.total.since(a.total).hit_rate for a, b in itertools.pairwise(ring)]

    @property
    def running(self) -> bool:
        return self._task.running

    async def start(self) -> None:
        if not self._task.running:
            self.sample()
            await self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def _sample(self) -> None:
        self.sample()


def _failed(error: Exception) -> None:
    # A failed snapshot must not end the sampling (``every`` goes on).
    log.error("cache snapshot failed", exc_info=error)
