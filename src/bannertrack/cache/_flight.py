"""Loads in flight, one per key and owner, and how an invalidation detaches them.

An owner is the event loop that runs an async load, or ``THREADS`` for loads run by
``get_or_load_sync``: async waiters can only await a future of their own loop, and a
thread must never block on a task of a loop it may be running itself.

Versions without a counter per key: a flight *is* the version its load read. An
invalidation removes the key's flights from the table and marks them ``detached``; a
detached load still answers its own waiters (they asked before the invalidation) but
never stores, and callers that arrive afterwards find no flight and start a fresh load.
A per-key counter would give the same ordering but would have to be kept for every key
ever invalidated; flight objects live only as long as their load.

Every method here must be called with the cache lock held.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

THREADS: object = object()
"""The owner of loads run by ``get_or_load_sync`` (all threads share them)."""


class Flight:
    """One load; ``detached`` is set by an invalidation and read before storing."""

    __slots__ = ("detached", "key", "owner")

    def __init__(self, key: str, owner: object) -> None:
        self.key = key
        self.owner = owner
        self.detached = False


class AsyncFlight(Flight):
    """A load run as a task on ``owner`` (its event loop); waiters shield and await it."""

    __slots__ = ("task",)

    task: asyncio.Task[object]


class SyncFlight(Flight):
    """A load run by one thread; the others wait on ``done`` and read the outcome."""

    __slots__ = ("done", "error", "thread", "value")

    def __init__(self, key: str) -> None:
        super().__init__(key, THREADS)
        self.done = threading.Event()
        self.thread = threading.get_ident()
        self.value: object = None
        self.error: BaseException | None = None


class FlightTable:
    """key -> owner -> flight. Tiny in practice: only keys being loaded right now."""

    __slots__ = ("_by_key",)

    def __init__(self) -> None:
        self._by_key: dict[str, dict[object, Flight]] = {}

    def __len__(self) -> int:
        return sum(len(owners) for owners in self._by_key.values())

    def find(self, key: str, owner: object) -> Flight | None:
        owners = self._by_key.get(key)
        return owners.get(owner) if owners is not None else None

    def add(self, flight: Flight) -> None:
        self._by_key.setdefault(flight.key, {})[flight.owner] = flight

    def discard(self, flight: Flight) -> None:
        """Forget a finished flight unless an invalidation already replaced it."""
        owners = self._by_key.get(flight.key)
        if owners is not None and owners.get(flight.owner) is flight:
            del owners[flight.owner]
            if not owners:
                del self._by_key[flight.key]

    def detach(self, key: str) -> None:
        owners = self._by_key.pop(key, None)
        if owners is not None:
            for flight in owners.values():
                flight.detached = True

    def detach_prefix(self, prefix: str) -> None:
        for key in [k for k in self._by_key if k.startswith(prefix)]:
            self.detach(key)

    def detach_all(self) -> None:
        for owners in self._by_key.values():
            for flight in owners.values():
                flight.detached = True
        self._by_key.clear()

    def __iter__(self) -> Iterator[Flight]:
        for owners in self._by_key.values():
            yield from owners.values()
