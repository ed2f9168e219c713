"""How ``CachedRepository`` invalidates: here at once, then on every other instance.

The local drop is synchronous (the cache engine's ``delete``/``delete_prefix``/``clear``
detach loads in flight, so a racing load cannot store the old state), and it is done
again once the spread has been awaited (see ``__call__``). The hook, when
there is one, is the cross-instance bus: a network round trip that also cleans the shared
L2 tier. Writes await it before they return, so when a write has returned no instance
reachable by the bus still serves what it replaced. The bus failing never fails a write
that has committed: it is logged, and the bus's own outage handling takes over.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

from bannertrack.cache import Cache

log = logging.getLogger("bannertrack.cache")

OnInvalidate = Callable[[Sequence[str], Sequence[str]], Awaitable[None] | None]
"""Called with (keys, prefixes) after each local invalidation; "" as a prefix is all."""


class Invalidation:
    def __init__(self, cache: Cache, on_invalidate: OnInvalidate | None = None) -> None:
        self._cache = cache
        self._on_invalidate = on_invalidate

    async def __call__(self, keys: Iterable[str] = (), prefixes: Iterable[str] = ()) -> int:
        """Drop ``keys`` and ``prefixes`` everywhere; returns the entries dropped here."""
        keys, prefixes = tuple(keys), tuple(prefixes)
        removed = self._drop(keys, prefixes)
        spread = self._on_invalidate(keys, prefixes) if self._on_invalidate else None
        if spread is not None:
            try:
                await spread
            except Exception:
                log.exception("spreading an invalidation to other instances failed")
            # While the spread was on its way, a read here could miss L1 and refill it from
            # the shared tier, which still held the old value until the spread reached it.
            # Dropping again before the write returns closes that window.
            self._drop(keys, prefixes)
        return removed

    def here(self, keys: Iterable[str] = (), prefixes: Iterable[str] = ()) -> int:
        """Drop ``keys`` and ``prefixes`` here only: the write that made them stale carried
        the spread itself (``Bus.carry``)."""
        return self._drop(tuple(keys), tuple(prefixes))

    def _drop(self, keys: tuple[str, ...], prefixes: tuple[str, ...]) -> int:
        cache = self._cache
        removed = sum(cache.delete(key) for key in keys)
        for prefix in prefixes:
            removed += cache.clear() if prefix == "" else cache.delete_prefix(prefix)
        return removed
