"""Single-flight loads for ``MemoryCache.get_or_load`` and ``MemoryCache.load``.

Kept apart from the store because it is the only part that runs user code (loaders),
and the rule that makes it safe is easy to state here: user code never runs while the
cache lock is held. The store's lock is taken to find or register a flight and again to
store its result, and a result is stored only if no invalidation detached the flight in
between (see ``_flight``).

This module sees the store only through ``LoadStore``, three calls that each take the
lock themselves; ``MemoryCache`` provides them. It does not import the store, so the
store can import it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar, cast

from bannertrack.cache._flight import Flight

V = TypeVar("V")


class LoadStore(Protocol):
    """What a load needs from the store it fills."""

    def join(
        self, key: str, loop: asyncio.AbstractEventLoop, start: Callable[[Flight], None]
    ) -> object:
        """A live value of ``key`` (uncounted), or its flight on ``loop``.

        A new flight is passed to ``start`` (which must not run user code) before it is
        registered, all under one acquisition of the lock.
        """
        ...

    def finish(self, flight: Flight, result: object, seconds: float) -> None:
        """Store ``result`` for ``seconds`` unless ``flight`` was detached; retire it."""
        ...

    def forget(self, flight: Flight) -> None:
        """Retire ``flight`` without storing anything."""
        ...


def join(store: LoadStore, key: str, loader: Callable[[], Awaitable[V]], seconds: float) -> object:
    """The key's load task on this loop (joined or started), or a value stored meanwhile."""
    loop = asyncio.get_running_loop()

    def start(flight: Flight) -> None:
        # A Task, not a bare coroutine, so the load runs to the end even if every caller
        # that awaits it is cancelled; the callback covers a task cancelled before it
        # ever ran (loop shutdown), which _run cannot see.
        flight.task = loop.create_task(_run(store, flight, loader, seconds))
        flight.task.add_done_callback(functools.partial(_task_done, store, flight))

    found = store.join(key, loop, start)
    if not isinstance(found, Flight):  # a flight stored it between the miss and the lock
        return found
    if found.task is asyncio.current_task():
        raise RuntimeError(f"the loader of {key!r} waits for its own key")
    return found.task


async def load(store: LoadStore, key: str, loader: Callable[[], Awaitable[V]], seconds: float) -> V:
    """Join the key's load on this loop, or start it; the caller already missed."""
    found = join(store, key, loader, seconds)
    if not isinstance(found, asyncio.Task):
        return cast(V, found)
    return cast(V, await asyncio.shield(found))


async def _run(
    store: LoadStore, flight: Flight, loader: Callable[[], Awaitable[V]], seconds: float
) -> object:
    try:
        result: object = await loader()
    except BaseException:
        # Retire the flight before waiters wake, so a caller arriving after the failure
        # starts a new load instead of receiving an old exception.
        store.forget(flight)
        raise
    store.finish(flight, result, seconds)
    return result


def _task_done(store: LoadStore, flight: Flight, task: asyncio.Task[object]) -> None:
    if not task.cancelled():
        # Mark the exception retrieved: if every waiter was cancelled, nobody else will.
        task.exception()
    store.forget(flight)
