"""``TieredCache``: ``MemoryCache`` (L1) in front of an optional shared ``RedisTier`` (L2).

It keeps the ``Cache`` contract and adds what running several instances needs:

- ``get_or_load`` looks in L1 first, and an L1 hit does nothing else: the degradation
  check, the TTL arithmetic and the L2 loader are for misses only.
- ``get_or_load`` stays single-flight and versioned in L1, and the L2 read happens
  *inside* the L1 loader, so an invalidation that detaches the load also discards what
  it read from L2. The L2 write-back is the tier's compare-and-set on the token of the
  miss, so a load that raced a write can poison neither tier.
- A value found in L2 is kept in L1 for what is left of its L2 TTL, not a fresh full
  TTL, so an entry never outlives the TTL of its policy by more than one L1 round.
- ``get``, ``set``, ``delete``, ``delete_prefix`` and ``clear`` act on L1 only. Reaching
  L2 and the other instances takes a network round trip, which a sync method cannot
  await: that is the invalidation bus's job, and ``CachedRepository`` awaits it before a
  write returns. The bus applies other instances' invalidations through these methods.
- Keys under a ``local_only`` prefix skip L2 altogether. A value composed from other
  cached entries must not be shared: another instance may compose it from its own L1
  while the bus is still on its way there, after L2 was invalidated, and its
  compare-and-set token would then be a fresh one, so L2 would keep the old state.
- While ``is_degraded()`` (the bus is down, so invalidations from other instances may be
  missed) L2 is not used and L1 keeps entries at most ``degraded_ttl`` seconds. An L2
  error never fails a read: the load goes on against the database.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from bannertrack.cache._memory import MemoryCache
from bannertrack.cache._protocol import NO_VALUE, Stale
from bannertrack.cache._redis import RedisTier, TierUnavailable
from bannertrack.cache._stats import CacheStats

V = TypeVar("V")

log = logging.getLogger("bannertrack.cache")


def _never() -> bool:
    return False


class TieredCache:
    def __init__(
        self,
        l1: MemoryCache,
        l2: RedisTier | None = None,
        *,
        default_ttl: float = 300.0,
        degraded_ttl: float = 5.0,
        is_degraded: Callable[[], bool] = _never,
        local_only: tuple[str, ...] = (),
    ) -> None:
        self.l1 = l1
        # Keys under these prefixes never use L2: values composed from other cached
        # entries, which could be built from this instance's L1 before the bus reached it
        # and then written to L2 with a token taken after the L2 invalidation.
        self._local_only = local_only
        self._l1_get = l1.get  # the hit closure itself: one attribute read less per hit
        self.l2 = l2
        self.is_degraded = is_degraded
        self._default_ttl = default_ttl
        self._degraded_ttl = degraded_ttl
        # Bumped by every local invalidation: a load compares it to know whether it may
        # put an L2 value into L1 with its own TTL (see _through_l2).
        self._invalidations = 0

    def __repr__(self) -> str:
        return f"TieredCache(l1={self.l1!r}, l2={'redis' if self.l2 else None})"

    # --- the Cache protocol, on L1 ------------------------------------------------------

    def get(self, key: str) -> object:
        return self.l1.get(key)

    def set(self, key: str, value: object, ttl: float | None = None) -> None:
        self.l1.set(key, value, self._l1_ttl(ttl))

    def delete(self, key: str) -> bool:
        self._invalidations += 1
        return self.l1.delete(key)

    def delete_prefix(self, prefix: str) -> int:
        self._invalidations += 1
        return self.l1.delete_prefix(prefix)

    def clear(self) -> int:
        self._invalidations += 1
        return self.l1.clear()

    def __contains__(self, key: object) -> bool:
        return key in self.l1

    def __len__(self) -> int:
        return len(self.l1)

    def stats(self) -> CacheStats:
        return self.l1.stats()

    def reset_stats(self) -> None:
        self.l1.reset_stats()

    async def start(self) -> None:
        await self.l1.start()

    async def stop(self) -> None:
        await self.l1.stop()

    # --- loads --------------------------------------------------------------------------

    async def get_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[V]],
        ttl: float | None = None,
        *,
        stale: Stale | None = None,
    ) -> V:
        # L1 first, and nothing else on a hit: no degradation check, no clock read, no
        # allocation. A miss is counted here once; l1.load then counts nothing.
        value = self._l1_get(key)
        if value is not NO_VALUE:
            return cast(V, value)
        seconds = self._default_ttl if ttl is None else ttl
        l2 = self.l2
        if self.is_degraded():
            # L1's stale copy outlives the shortened deadline (it is kept from the
            # policy's TTL): a bus that went down with the database leaves the fallback.
            return await self.l1.load(key, loader, min(seconds, self._degraded_ttl), stale=stale)
        if l2 is None or not l2.available or key.startswith(self._local_only):
            # no L2, resting, or local
            return await self.l1.load(key, loader, seconds, stale=stale)
        return await self.l1.load(
            key,
            functools.partial(self._through_l2, l2, key, loader, seconds),
            seconds,
            stale=stale,
        )

    def cap_ttl(self, seconds: float) -> int:
        return self.l1.cap_ttl(seconds)

    async def _through_l2(
        self,
        l2: RedisTier,
        key: str,
        loader: Callable[[], Awaitable[V]],
        ttl: float,
    ) -> V:
        seen = self._invalidations
        token = None
        try:
            found = await l2.fetch(key)
        except TierUnavailable as exc:
            log.warning("L2 read of %s failed, loading from the source: %s", key, exc)
        else:
            if found.value is not NO_VALUE:
                if self._invalidations == seen and found.ttl < ttl:
                    # No invalidation since the fetch began (we are on the loop; nothing
                    # ran in between), so storing now is as safe as the flight storing,
                    # and it keeps the L2 deadline. set() detaches our flight, so the
                    # flight's own store (with the full TTL) does not happen.
                    self.l1.set(key, found.value, found.ttl)
                return cast(V, found.value)
            token = found.token
        value = await loader()
        if token is not None and not self.is_degraded():
            try:
                await l2.store(key, value, ttl, token)
            except TierUnavailable as exc:
                log.warning("L2 write of %s failed: %s", key, exc)
        return value

    def _l1_ttl(self, ttl: float | None) -> float:
        seconds = self._default_ttl if ttl is None else ttl
        if self.is_degraded():
            return min(seconds, self._degraded_ttl)
        return seconds
