"""The cache engine: a bounded TTL cache with statistics, single-flight and invalidation.

It knows nothing about banners; ``CachedRepository`` configures it. Everything outside
``__all__`` lives in private modules and may change without notice.
"""

from bannertrack.cache._memory import MemoryCache
from bannertrack.cache._protocol import NO_VALUE, Cache, Stale
from bannertrack.cache._redis import RedisTier, StructCodec
from bannertrack.cache._stats import COUNTER_FIELDS, STATS_FIELDS, CacheStats, NamespaceStats
from bannertrack.cache._tiered import TieredCache

__all__ = [
    "COUNTER_FIELDS",
    "NO_VALUE",
    "STATS_FIELDS",
    "Cache",
    "CacheStats",
    "MemoryCache",
    "NamespaceStats",
    "RedisTier",
    "Stale",
    "StructCodec",
    "TieredCache",
]
