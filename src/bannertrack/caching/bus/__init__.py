"""Cross-instance invalidation: every write reaches every instance's in-memory cache.

Each instance publishes the (keys, prefixes) it invalidated locally and applies what the
others publish (its own messages come back and are ignored by instance id). This package
is the transport only; ``bannertrack.bootstrap`` picks one from the settings:

    BANNERTRACK_REDIS_URL set     -> Redis pub/sub (and the Redis L2 tier)
    else PostgreSQL database      -> LISTEN/NOTIFY
    else (SQLite)                 -> none: one process only (see ``check_topology``)

See docs/scale-out.md for the design and its trade-offs.
"""

from bannertrack.caching.bus._base import Apply, Bus, Message, OnState, apply_to
from bannertrack.caching.bus._postgres import PostgresBus, asyncpg_connect_args
from bannertrack.caching.bus._redis import RedisBus
from bannertrack.models import BusStats  # the value lives below, so metrics can name it

__all__ = [
    "Apply",
    "Bus",
    "BusStats",
    "Message",
    "OnState",
    "PostgresBus",
    "RedisBus",
    "apply_to",
    "asyncpg_connect_args",
]
