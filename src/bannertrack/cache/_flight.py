"""Loads in flight, one per key and event loop, and how an invalidation detaches them.

A flight's owner is the event loop that runs its load: waiters can only await a task
of their own loop, so coroutines on another loop (another thread) start their own.

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
from collections.abc import Iterator


class Flight:
    """One load, run as a task on ``owner`` (its event loop); waiters shield and await it.

    ``detached`` is set by an invalidation and read before storing.
    """

    __slots__ = ("detached", "key", "owner", "task")

    task: asyncio.Task[object]

    def __init__(self, key: str, owner: asyncio.AbstractEventLoop) -> None:
        self.key = key
        self.owner = owner
        self.detached = False


class FlightTable:
    """key -> loop -> flight. Tiny in practice: only keys being loaded right now."""

    __slots__ = ("_by_key",)

    def __init__(self) -> None:
        self._by_key: dict[str, dict[asyncio.AbstractEventLoop, Flight]] = {}

    def __len__(self) -> int:
        return sum(len(owners) for owners in self._by_key.values())

    def find(self, key: str, owner: asyncio.AbstractEventLoop) -> Flight | None:
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
