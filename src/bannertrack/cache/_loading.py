"""Single-flight loads for ``MemoryCache.get_or_load`` and ``get_or_load_sync``.

Kept apart from the store because it is the only part that runs user code (loaders),
and the rule that makes it safe is easy to state here: user code never runs while the
cache lock is held. The lock is taken to find or register a flight and again to store
its result, and a result is stored only if no invalidation detached the flight in
between (see ``_flight``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar, cast

from bannertrack.cache._flight import THREADS, AsyncFlight, Flight, SyncFlight
from bannertrack.cache._protocol import NO_VALUE

if TYPE_CHECKING:
    from bannertrack.cache._memory import MemoryCache

V = TypeVar("V")


def _finish(cache: MemoryCache, flight: Flight, result: object, seconds: float) -> None:
    """Store a load's result unless the flight was detached, and retire the flight."""
    now = cache._clock()
    with cache._lock:
        if not flight.detached and result is not NO_VALUE:
            cache._store(flight.key, result, now + seconds, now)
        cache._flights.discard(flight)


def _forget(cache: MemoryCache, flight: Flight) -> None:
    with cache._lock:
        cache._flights.discard(flight)


async def load_async(
    cache: MemoryCache,
    key: str,
    loader: Callable[[], Awaitable[V]] | Callable[[], V],
    ttl: float | None,
) -> V:
    value = cache._fast_get(key)
    if value is not NO_VALUE:
        return cast(V, value)
    seconds = cache._ttl_seconds(ttl)
    loop = asyncio.get_running_loop()
    now = cache._clock()
    with cache._lock:
        # A flight may have stored the value between our miss and the lock.
        value = cache._peek(key, now)
        if value is not NO_VALUE:
            return cast(V, value)
        flight = cache._flights.find(key, loop)
        if flight is None:
            flight = AsyncFlight(key, loop)
            # A Task, not a bare coroutine, so the load runs to the end even if every
            # caller that awaits it is cancelled; the callback covers a task cancelled
            # before it ever ran (loop shutdown), which _run_async cannot see.
            flight.task = loop.create_task(_run_async(cache, flight, loader, seconds))
            flight.task.add_done_callback(functools.partial(_task_done, cache, flight))
            cache._flights.add(flight)
    assert isinstance(flight, AsyncFlight)
    if flight.task is asyncio.current_task():
        raise RuntimeError(f"the loader of {key!r} waits for its own key")
    return cast(V, await asyncio.shield(flight.task))


async def _run_async(
    cache: MemoryCache,
    flight: AsyncFlight,
    loader: Callable[[], Awaitable[V]] | Callable[[], V],
    seconds: float,
) -> object:
    try:
        result: object = loader()
        if inspect.isawaitable(result):
            result = await result
    except BaseException:
        # Retire the flight before waiters wake, so a caller arriving after the failure
        # starts a new load instead of receiving an old exception.
        _forget(cache, flight)
        raise
    _finish(cache, flight, result, seconds)
    return result


def _task_done(cache: MemoryCache, flight: AsyncFlight, task: asyncio.Task[object]) -> None:
    if not task.cancelled():
        # Mark the exception retrieved: if every waiter was cancelled, nobody else will.
        task.exception()
    _forget(cache, flight)


def load_sync(cache: MemoryCache, key: str, loader: Callable[[], V], ttl: float | None) -> V:
    value = cache._fast_get(key)
    if value is not NO_VALUE:
        return cast(V, value)
    seconds = cache._ttl_seconds(ttl)
    now = cache._clock()
    with cache._lock:
        value = cache._peek(key, now)
        if value is not NO_VALUE:
            return cast(V, value)
        found = cache._flights.find(key, THREADS)
        if found is None:
            flight = SyncFlight(key)
            cache._flights.add(flight)
            leader = True
        else:
            assert isinstance(found, SyncFlight)
            flight, leader = found, False
    if not leader:
        if flight.thread == threading.get_ident():
            raise RuntimeError(f"the loader of {key!r} waits for its own key")
        flight.done.wait()
        if flight.error is not None:
            raise flight.error
        return cast(V, flight.value)
    try:
        result = loader()
    except BaseException as exc:
        flight.error = exc
        _forget(cache, flight)
        raise
    else:
        flight.value = result
        _finish(cache, flight, result, seconds)
    finally:
        flight.done.set()  # whatever happened, no waiter may block forever
    return result
