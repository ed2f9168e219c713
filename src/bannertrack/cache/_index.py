"""``Index``: the key index, the SIEVE queue, the namespaces and the flight table, and
the primitives over them that ``MemoryCache``'s operations are built from.

Everything here is guarded by one ``threading.Lock``; a method that does not take it
says "call with the lock held". ``MemoryCache`` (``_memory``) adds the public surface:
TTL rules, invalidations, statistics, the background sweep and loads. The split is by
what the code touches, not by speed: the subclass reads these attributes directly, so
the hot paths pay no extra indirection.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

from bannertrack.cache._entry import Entry, Namespace
from bannertrack.cache._flight import Flight, FlightTable
from bannertrack.cache._protocol import NO_VALUE
from bannertrack.cache._sieve import SieveQueue
from bannertrack.cache._stats import namespace_of

_SWEEP_CHUNK = 1024
"""Expired entries removed per lock acquisition by a sweep."""


class Index:
    """The structures of a bounded cache of ``max_entries`` entries, on ``clock``."""

    def __init__(self, max_entries: int, clock: Callable[[], float]) -> None:
        self._max_entries = max_entries
        self._clock = clock
        # Seconds an entry is kept past its deadline as the answer to a failed load.
        self._stale_for = 0.0
        self.stale_served = 0  # failed or slow loads answered with a stale value
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self._queue = SieveQueue()
        self._namespaces: dict[str, Namespace] = {}
        self._flights = FlightTable()
        self._loads = _LoadSlots(self)

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
            elif entry.stale_until > now:
                ns = entry.ns  # expired, but kept as the answer to a load that fails
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

    def _stale(self, key: str) -> object:
        """The value of ``key`` while it may answer a failed load, or ``NO_VALUE``.

        Takes the lock: an invalidation that removed the entry wins, so a value that a
        returned write made obsolete is never handed out.
        """
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.stale_until <= now:
                return NO_VALUE
            self.stale_served += 1
            return entry.value

    def _store(self, key: str, value: object, expires: float, now: float) -> None:
        """Insert or overwrite; call with the lock held."""
        entry = self._entries.get(key)
        if entry is not None:
            ns = entry.ns
            if entry.expires > now:
                # In place: a concurrent lock-free reader sees the old or the new value.
                entry.value = value
                entry.expires = expires
                entry.stale_until = expires + self._stale_for
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
        entry.stale_until = expires + self._stale_for
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

    @staticmethod
    def _count_removal(entry: Entry, now: float) -> bool:
        if entry.expires > now:
            entry.ns.deletes += 1
            return True
        entry.ns.expirations += 1
        return False

    def _sweep_chunks(self) -> Iterator[int]:
        """Sweep in chunks, yielding the count removed by each, so callers can pause."""
        now = self._clock()
        with self._lock:
            entries = list(self._entries.values())
        # Deadlines are read without the lock and checked again under it: the filter
        # keeps the time under the lock proportional to what actually expired.
        expired = [entry for entry in entries if entry.stale_until <= now]
        del entries
        for start in range(0, len(expired), _SWEEP_CHUNK):
            removed = 0
            with self._lock:
                for entry in expired[start : start + _SWEEP_CHUNK]:
                    if entry.stale_until <= now and self._entries.get(entry.key) is entry:
                        self._unlink(entry)
                        entry.ns.expirations += 1
                        removed += 1
            yield removed

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

    def __init__(self, cache: Index) -> None:
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
