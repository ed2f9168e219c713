"""The ``Cache`` contract over the in-process implementations (the Redis-backed tier runs
the same suite in tests/integration/test_cache_contract_redis.py)."""

from __future__ import annotations

import pytest
from tests.support.cache_contract import CAPACITY, DEFAULT_TTL, CacheContract, ContractClock

from bannertrack.cache import Cache, MemoryCache, TieredCache


class TestMemoryCache(CacheContract):
    @pytest.fixture
    def cache(self, clock: ContractClock) -> Cache:
        return MemoryCache(max_entries=CAPACITY, default_ttl=DEFAULT_TTL, clock=clock)


class TestTieredCacheWithoutL2(CacheContract):
    @pytest.fixture
    def cache(self, clock: ContractClock) -> Cache:
        l1 = MemoryCache(max_entries=CAPACITY, default_ttl=DEFAULT_TTL, clock=clock)
        return TieredCache(l1, default_ttl=DEFAULT_TTL)
