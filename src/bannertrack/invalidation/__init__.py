"""Cross-instance invalidation: every write reaches every instance's in-memory cache.

Each instance publishes the (keys, prefixes) it invalidated locally and applies what the
others publish (its own messages come back and are ignored by instance id). The
transport is picked from the settings:

    BANNERTRACK_REDIS_URL set     -> Redis pub/sub (and the Redis L2 tier)
    else PostgreSQL database      -> LISTEN/NOTIFY
    else (SQLite)                 -> none: one process only (see ``check_topology``)

See docs/scale-out.md for the design and its trade-offs.
"""

from bannertrack.invalidation._assembly import (
    CacheStack,
    apply_to,
    build_bus,
    check_topology,
    open_cache_stack,
)
from bannertrack.invalidation._base import Bus, BusStats, Message
from bannertrack.invalidation._postgres import PostgresBus
from bannertrack.invalidation._redis import RedisBus

__all__ = [
    "Bus",
    "BusStats",
    "CacheStack",
    "Message",
    "PostgresBus",
    "RedisBus",
    "apply_to",
    "build_bus",
    "check_topology",
    "open_cache_stack",
]
