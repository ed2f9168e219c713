"""Stale-if-error: a load that fails (or is too slow) answered with the last value held.

A cache in front of a database that goes away can keep answering what it held: the
entry's deadline says when it must be read again, not that it became wrong. So an entry
is kept ``stale_for`` seconds past its deadline (``MemoryCache(stale_for=...)``), never
returned by ``get``, and handed out only by a load that asked for it with a ``Stale``:

- the load failed with an error ``usable`` accepts (the caller decides which: "the
  database is not there", never a bug), or
- it has not answered within ``wait()`` seconds. The load goes on (it is shielded, as
  every load is) and stores its result when it comes; ``wait`` is read per call, so a
  caller that knows the source is down can answer at once.

Invalidations remove the entry, stale copy and all: a value that a returned write made
obsolete is never served, so the consistency promise holds whatever ``stale_for`` is.
A key never held still fails with the load's error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from bannertrack.cache import _loading
from bannertrack.cache._protocol import NO_VALUE, Stale

V = TypeVar("V")


async def load_or_stale(
    store: _loading.LoadStore,
    stale_value: Callable[[str], object],
    key: str,
    loader: Callable[[], Awaitable[V]],
    seconds: float,
    stale: Stale,
) -> V:
    found = _loading.join(store, key, loader, seconds)
    if not isinstance(found, asyncio.Task):
        return cast(V, found)
    task = cast("asyncio.Task[V]", found)
    if not task.done():
        wait = stale.wait()
        if wait > 0:
            # asyncio.wait never cancels the task: the load runs on for its other callers.
            await asyncio.wait((task,), timeout=wait)
    if task.done():
        if task.cancelled():
            return await asyncio.shield(task)  # raises CancelledError as the load did
        error = task.exception()
        if error is None:
            return task.result()
        if not stale.usable(error):
            raise error
        old = stale_value(key)
        if old is NO_VALUE:
            raise error
        return cast(V, old)
    old = stale_value(key)
    if old is NO_VALUE:
        return await asyncio.shield(task)  # nothing held: wait for the load as without
    return cast(V, old)
