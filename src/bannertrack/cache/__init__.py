"""The cache engine: a bounded TTL cache with statistics, single-flight and invalidation.

It knows nothing about banners; ``CachedRepository`` configures it. Everything outside
``__all__`` lives in private modules and may change without notice.
"""

from bannertrack.cache._memory import MemoryCache
from bannertrack.cache._protocol import NO_VALUE, Cache
from bannertrack.cache._stats import CacheStats, NamespaceStats

__all__ = ["NO_VALUE", "Cache", "CacheStats", "MemoryCache", "NamespaceStats"]
