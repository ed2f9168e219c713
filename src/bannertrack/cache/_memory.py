"""``MemoryCache``: the in-process store, its bound, its counters and its invalidations.

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
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar, cast

from bannertrack.cache import _loading
from bannertrack.cache._flight import Flight, FlightTable
from bannertrack.cache._hotpath import make_get
from bannertrack.cache._protocol import NO_VALUE
from bannertrack.cache._sieve import Entry, SieveQueue
from bannertrack.cache._stats import CacheStats, Namespace, namespace_of, snapshot
from bannertrack.cache._sweeper import Sweeper
from bannertrack.tasks import Sleep

V = TypeVar("V")

_SWEEP_CHUNK = 1024
"""Expired entries removed per lock acquisition by a sweep."""


class MemoryCache:
    """A bounded in-memory cache with per-entry TTL, SIEVE eviction and exact statistics.

    ``max_entries`` bounds the number of stored entries, expired ones included until
    they are found or swept. ``default_ttl`` applies when ``set`` gets ``ttl=None``;
    ``None`` there means entries never expire. ``clock`` is injected so tests move time
    instead of sleeping; it must be monotonic and is read once per operation. ``sleep``
    paces the background cleanup, so tests can drive it with fake time too.
    """

    def __init__(
        self,
        max_entries: int = 100_000,
        default_ttl: float | None = 300.0,
        cleanup_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        if default_ttl is not None:
            _check_ttl(default_ttl, "default_ttl")
        if not cleanup_interval > 0:
            raise ValueError(f"cleanup_interval must be positive, got {cleanup_interval}")
        self._max_entries = max_entries
        self._default_ttl = math.inf if default_ttl is None else default_ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self._queue = SieveQueue()
        self._namespaces: dict[str, Namespace] = {}
        self._flights = FlightTable()
        self._sweeper = Sweeper(self._sweep_chunks, cleanup_interval, sleep=sleep)
        self._fast_get = make_get(self._entries, clock, self._get_slow)
        self._loads = _LoadSlots(self)
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

    def _get_slow(self, key: str) -> object:
        """Miss or expired: look again under the lock, then count and clean up."""
        now = self._clock()
        lock = self._lock
        # acquire/release, not `with`: `with` looks up and binds __enter__ and __exit__ on
        # every use, ~120 ns more here, and misses and sets are the next-hottest paths.
        lock.acquire()
        try:
            entry = self._entries.get(key)
            if entry is None:
                head, sep, _ = key.partition(":")  # inlined namespace_of: ~40 ns a call
                ns = self._namespaces.get(head if sep else "")
                if ns is None:
                    ns = self._namespace(key)
            elif entry.expires > now:  # stored by another thread since the lookup
                entry.visited = True
                next(entry.hits)
                return entry.value
            else:
                self._unlink(entry)
                ns = entry.ns
                ns.expirations += 1
            ns.misses += 1
        finally:
            lock.release()
        return NO_VALUE

    def _peek(self, key: str, now: float) -> object:
        """A live value without counting it; call with the lock held."""
        entry = self._entries.get(key)
        if entry is not None and entry.expires > now:
            return entry.value
        return NO_VALUE

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

    def _store(self, key: str, value: object, expires: float, now: float) -> None:
        """Insert or overwrite; call with the lock held."""
        entry = self._entries.get(key)
        if entry is not None:
            ns = entry.ns
            if entry.expires > now:
                # In place: a concurrent lock-free reader sees the old or the new value.
                entry.value = value
                entry.expires = expires
                entry.visited = True
                ns.sets += 1
                return
            self._unlink(entry)
            ns.expirations += 1
        else:
            head, sep, _ = key.partition(":")  # inlined namespace_of, as in _get_slow
            found = self._namespaces.get(head if sep else "")
            ns = self._namespace(key) if found is None else found
        if len(self._entries) >= self._max_entries:
            self._evict(now)
        entry = Entry(key, value, expires, ns)
        self._entries[key] = entry
        ns.entries[key] = entry
        self._queue.push(entry)
        ns.sets += 1

    def _evict(self, now: float) -> None:
        victim = self._queue.victim(now)
        del self._entries[victim.key]
        del victim.ns.entries[victim.key]
        if victim.expires > now:
            victim.ns.evictions += 1
        else:
            victim.ns.expirations += 1

    def _unlink(self, entry: Entry) -> None:
        del self._entries[entry.key]
        del entry.ns.entries[entry.key]
        self._queue.remove(entry)

    def _namespace(self, key: str) -> Namespace:
        name = namespace_of(key)
        ns = self._namespaces.get(name)
        if ns is None:
            ns = self._namespaces[name] = Namespace(name)
        return ns

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

    @staticmethod
    def _count_removal(entry: Entry, now: float) -> bool:
        if entry.expires > now:
            entry.ns.deletes += 1
            return True
        entry.ns.expirations += 1
        return False

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

    def _sweep_chunks(self) -> Iterator[int]:
        """Sweep in chunks, yielding the count removed by each, so callers can pause."""
        now = self._clock()
        with self._lock:
            entries = list(self._entries.values())
        # Deadlines are read without the lock and checked again under it: the filter
        # keeps the time under the lock proportional to what actually expired.
        expired = [entry for entry in entries if entry.expires <= now]
        del entries
        for start in range(0, len(expired), _SWEEP_CHUNK):
            removed = 0
            with self._lock:
                for entry in expired[start : start + _SWEEP_CHUNK]:
                    if entry.expires <= now and self._entries.get(entry.key) is entry:
                        self._unlink(entry)
                        entry.ns.expirations += 1
                        removed += 1
            yield removed

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
        self, key: str, loader: Callable[[], Awaitable[V]], ttl: float | None = None
    ) -> V:
        """The cached value, or the result of ``loader`` run once for all concurrent misses.

        Single-flight per key within the running event loop; the load is shielded, so a
        cancelled caller does not cancel it for the others. A failing loader raises the
        same exception to every waiter and caches nothing. The loader runs on the loop:
        wrap blocking work in ``asyncio.to_thread``.
        """
        value = self._fast_get(key)
        if value is not NO_VALUE:
            return cast(V, value)
        return await _loading.load(self._loads, key, loader, self._ttl_seconds(ttl))

    async def load(
        self, key: str, loader: Callable[[], Awaitable[V]], ttl: float | None = None
    ) -> V:
        """``get_or_load`` for a caller whose own ``get`` of ``key`` just missed.

        Joins or starts the key's load and counts nothing, since that ``get`` counted
        the miss; a value stored since then is returned without a load. For a front end
        that must look in this cache first (``TieredCache``).
        """
        return await _loading.load(self._loads, key, loader, self._ttl_seconds(ttl))

    # --- views for tests and debugging ---------------------------------------------------

    def in_flight(self) -> int:
        """Loads running now (one per key and event loop)."""
        with self._lock:
            return len(self._flights)

    def eviction_order(self) -> list[str]:
        """Stored keys in SIEVE queue order, oldest first; expired ones included."""
        with self._lock:
            return self._queue.keys_oldest_first()

    def verify(self) -> None:
        """Raise ``AssertionError`` unless the index, the queue and the namespaces agree.

        O(n) under the lock: for tests and debugging, never on a request path.
        """
        with self._lock:
            queued = self._queue.keys_oldest_first()
            if not (len(queued) == self._queue.size == len(self._entries) <= self._max_entries):
                raise AssertionError("index and SIEVE queue sizes differ or exceed the bound")
            if sorted(queued) != sorted(self._entries):
                raise AssertionError("index and SIEVE queue hold different keys")
            if sum(len(ns.entries) for ns in self._namespaces.values()) != len(self._entries):
                raise AssertionError("namespaces and index hold different numbers of entries")
            for key, entry in self._entries.items():
                if entry.key != key or entry.ns.entries.get(key) is not entry:
                    raise AssertionError(f"entry of {key!r} is filed wrongly")


class _LoadSlots:
    """``MemoryCache``'s side of single-flight loads: all that ``_loading`` may touch.

    Each call takes the cache lock once and runs no user code under it.
    """

    __slots__ = ("_cache",)

    def __init__(self, cache: MemoryCache) -> None:
        self._cache = cache

    def join(
        self, key: str, loop: asyncio.AbstractEventLoop, start: Callable[[Flight], None]
    ) -> object:
        cache = self._cache
        now = cache._clock()
        with cache._lock:
            value = cache._peek(key, now)
            if value is not NO_VALUE:
                return value
            flight = cache._flights.find(key, loop)
            if flight is None:
                flight = Flight(key, loop)
                start(flight)
                cache._flights.add(flight)
            return flight

    def finish(self, flight: Flight, result: object, seconds: float) -> None:
        cache = self._cache
        now = cache._clock()
        with cache._lock:
            if not flight.detached and result is not NO_VALUE:
                cache._store(flight.key, result, now + seconds, now)
            cache._flights.discard(flight)

    def forget(self, flight: Flight) -> None:
        with self._cache._lock:
            self._cache._flights.discard(flight)


def _check_ttl(ttl: float, name: str = "ttl") -> None:
    if not ttl > 0:  # also rejects NaN
        raise ValueError(f"{name} must be positive seconds, got {ttl}")
