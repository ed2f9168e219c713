"""``MemoryCache``: the in-process store, its bound, its counters and its invalidations.

The structures and the primitives over them live in ``_index.Index``, its base class.

Threading model: one ``threading.Lock`` guards the key index, the SIEVE queue, the
namespaces and the flight table. The hit path takes no lock at all: it does one dict
lookup, one clock read, one ``visited`` write and one atomic counter increment (see
``_stats``). Everything else (misses, writes, invalidations, sweeps) takes the lock for
a bounded, short time and never calls user code while holding it, so the same object
is safe from many threads and from coroutines on any number of event loops.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from bannertrack.cache import _loading
from bannertrack.cache._entry import snapshot
from bannertrack.cache._hotpath import make_get
from bannertrack.cache._index import Index
from bannertrack.cache._protocol import NO_VALUE, Stale
from bannertrack.cache._stale import load_or_stale
from bannertrack.cache._stats import CacheStats
from bannertrack.cache._sweeper import Sweeper
from bannertrack.tasks import Sleep

V = TypeVar("V")


class MemoryCache(Index):
    """A bounded in-memory cache with per-entry TTL, SIEVE eviction and exact statistics.

    ``max_entries`` bounds the number of stored entries, expired ones included until
    they are found or swept. ``default_ttl`` applies when ``set`` gets ``ttl=None``;
    ``None`` there means entries never expire. ``clock`` is injected so tests move time
    instead of sleeping; it must be monotonic and is read once per operation. ``sleep``
    paces the background cleanup, so tests can drive it with fake time too.
    ``stale_for`` keeps each entry that many seconds past its deadline as the answer to
    a load that fails (``_stale``: stale-if-error); 0, the default, keeps nothing.
    """

    def __init__(
        self,
        max_entries: int = 100_000,
        default_ttl: float | None = 300.0,
        cleanup_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        stale_for: float = 0.0,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        if default_ttl is not None:
            _check_ttl(default_ttl, "default_ttl")
        if not cleanup_interval > 0:
            raise ValueError(f"cleanup_interval must be positive, got {cleanup_interval}")
        if not stale_for >= 0:
            raise ValueError(f"stale_for must be 0 or more seconds, got {stale_for}")
        super().__init__(max_entries, clock)
        self._stale_for = stale_for
        self._default_ttl = math.inf if default_ttl is None else default_ttl
        self._sweeper = Sweeper(self._sweep_chunks, cleanup_interval, sleep=sleep)
        self._fast_get = make_get(self._entries, clock, self._get_slow)
        # Shadow the method with the closure: instance attributes win over plain methods.
        self.__dict__["get"] = self._fast_get

    def __repr__(self) -> str:
        return f"MemoryCache(size={len(self._entries)}, max_entries={self._max_entries})"

    # --- reads -------------------------------------------------------------------------

    def get(self, key: str) -> object:
        """The value stored under ``key``, or ``NO_VALUE`` if absent or expired.

        Never returns an expired value. Instances answer through the closure built by
        ``_hotpath.make_get``; this method only documents and types it.
        """
        return self._fast_get(key)

    def __contains__(self, key: object) -> bool:
        """Whether a live entry is stored, without counting a hit or a miss.

        For bookkeeping (warming, tests): statistics describe traffic, not inspection.
        """
        entry = self._entries.get(key) if isinstance(key, str) else None
        return entry is not None and entry.expires > self._clock()

    def __len__(self) -> int:
        """Stored entries, including expired ones not yet found or swept."""
        return len(self._entries)

    # --- writes ------------------------------------------------------------------------

    def set(self, key: str, value: object, ttl: float | None = None) -> None:
        """Store ``value`` for ``ttl`` seconds (``None``: the default TTL).

        An explicit write is newer than any load already running for the key, so it
        detaches that load: the load's result will not overwrite this value.
        """
        if value is NO_VALUE:
            raise ValueError("NO_VALUE marks a miss and cannot be stored")
        seconds = self._default_ttl if ttl is None else self._ttl_seconds(ttl)
        now = self._clock()
        lock = self._lock
        lock.acquire()  # not `with`: see _get_slow
        try:
            self._flights.detach(key)
            self._store(key, value, now + seconds, now)
        finally:
            lock.release()

    def _ttl_seconds(self, ttl: float | None) -> float:
        if ttl is None:
            return self._default_ttl
        _check_ttl(ttl)
        return ttl

    # --- invalidation ------------------------------------------------------------------

    def delete(self, key: str) -> bool:
        """Invalidate ``key``: remove it and detach its load in flight.

        True if a live entry was removed; an expired one counts as an expiration.
        """
        now = self._clock()
        with self._lock:
            self._flights.detach(key)
            entry = self._entries.get(key)
            if entry is None:
                return False
            self._unlink(entry)
            return self._count_removal(entry, now)

    def delete_prefix(self, prefix: str) -> int:
        """Invalidate every key starting with ``prefix``, stored or being loaded.

        Only the namespaces the prefix can match are scanned, so ``"top_banners:"`` costs
        the size of that namespace, not of the whole cache. Returns live entries removed.
        """
        now = self._clock()
        with self._lock:
            self._flights.detach_prefix(prefix)
            if ":" in prefix:
                candidates = [self._namespaces.get(prefix.partition(":")[0])]
            else:  # "" (keys without ":") plus every namespace whose name matches
                candidates = [
                    ns for name, ns in self._namespaces.items() if name.startswith(prefix)
                ]
                if prefix:
                    candidates.append(self._namespaces.get(""))
            removed = 0
            for ns in candidates:
                if ns is None:
                    continue
                for entry in [e for k, e in ns.entries.items() if k.startswith(prefix)]:
                    self._unlink(entry)
                    removed += self._count_removal(entry, now)
            return removed

    def clear(self) -> int:
        """Invalidate everything, loads in flight included. Returns live entries removed."""
        now = self._clock()
        with self._lock:
            self._flights.detach_all()
            removed = 0
            for ns in self._namespaces.values():
                for entry in ns.entries.values():
                    removed += self._count_removal(entry, now)
                ns.entries.clear()
            self._entries.clear()
            self._queue.clear()
            return removed

    # --- expiry ------------------------------------------------------------------------

    def cleanup_expired(self) -> int:
        """Remove every entry expired now; returns how many. Takes the lock per chunk."""
        return sum(self._sweep_chunks())

    def cap_ttl(self, seconds: float) -> int:
        """Let no entry live more than ``seconds`` from now; returns how many were cut.

        For a cache that may stop hearing about invalidations (its bus went down): what
        it holds was right when the bus was lost, so it stays servable for a short while
        instead of being thrown away at the moment the database may be down too.
        """
        _check_ttl(seconds)
        now = self._clock()
        deadline = now + seconds
        cut = 0
        with self._lock:
            for entry in self._entries.values():
                if entry.expires > deadline:
                    entry.expires = deadline
                    cut += 1
        return cut

    async def start(self) -> None:
        """Start the background cleanup on the running loop (no-op if running)."""
        await self._sweeper.start()

    async def stop(self) -> None:
        """Cancel the background cleanup and wait for it to end (no-op if stopped)."""
        await self._sweeper.stop()

    # --- statistics --------------------------------------------------------------------

    def stats(self) -> CacheStats:
        """A snapshot of all counters, taken under one acquisition of the lock."""
        with self._lock:
            return snapshot(self._namespaces, len(self._entries), self._max_entries)

    def reset_stats(self) -> None:
        """Zero every counter; sizes are state, not counters, and are kept."""
        with self._lock:
            for ns in self._namespaces.values():
                ns.reset()

    # --- loads -------------------------------------------------------------------------

    async def get_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[V]],
        ttl: float | None = None,
        *,
        stale: Stale | None = None,
    ) -> V:
        """The cached value, or the result of ``loader`` run once for all concurrent misses.

        Single-flight per key within the running event loop; the load is shielded, so a
        cancelled caller does not cancel it for the others. A failing loader raises the
        same exception to every waiter and caches nothing. The loader runs on the loop:
        wrap blocking work in ``asyncio.to_thread``. With ``stale``, a load that fails or
        is slow may be answered with the value held past its deadline (``_stale``).
        """
        value = self._fast_get(key)
        if value is not NO_VALUE:
            return cast(V, value)
        return await self.load(key, loader, ttl, stale=stale)

    async def load(
        self,
        key: str,
        loader: Callable[[], Awaitable[V]],
        ttl: float | None = None,
        *,
        stale: Stale | None = None,
    ) -> V:
        """``get_or_load`` for a caller whose own ``get`` of ``key`` just missed.

        Joins or starts the key's load and counts nothing, since that ``get`` counted
        the miss; a value stored since then is returned without a load. For a front end
        that must look in this cache first (``TieredCache``).
        """
        seconds = self._ttl_seconds(ttl)
        if stale is None or self._stale_for <= 0:
            return await _loading.load(self._loads, key, loader, seconds)
        return await load_or_stale(self._loads, self._stale, key, loader, seconds, stale)


def _check_ttl(ttl: float, name: str = "ttl") -> None:
    if not ttl > 0:  # also rejects NaN
        raise ValueError(f"{name} must be positive seconds, got {ttl}")
