from __future__ import annotations

import pytest
from cache_fakes import FakeClock

from bannertrack.cache import MemoryCache


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> MemoryCache:
    return MemoryCache(max_entries=100, default_ttl=60.0, clock=clock)
