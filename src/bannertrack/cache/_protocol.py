"""The seam: what the service programs against, and the typed miss marker.

A Redis-backed or two-tier cache implements ``Cache`` later; ``CachedRepository`` never
needs to know which one it holds.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Literal, Protocol, TypeVar, runtime_checkable

from bannertrack.cache._stats import CacheStats

V = TypeVar("V")


class _NoValue(enum.Enum):
    """A single-member enum so type checkers can narrow on ``is NO_VALUE``.

    It is falsy, but callers should compare with ``is``: a cached ``0``, ``""`` or
    ``None`` is a hit and is falsy too.
    """

    NO_VALUE = "NO_VALUE"

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NO_VALUE"

    __str__ = __repr__


NO_VALUE: Final = _NoValue.NO_VALUE


@dataclass(frozen=True, slots=True)
class Stale:
    """When a load may be answered with the value kept past its deadline (``_stale``).

    ``usable(error)``: the load failed in a way a stale value may answer (the caller
    decides: "the source is not there", never a bug). ``wait()``: seconds to wait for
    the load before the stale value answers; read per call.
    """

    usable: Callable[[BaseException], bool]
    wait: Callable[[], float]


@runtime_checkable
class Cache(Protocol):
    """A key-value cache with per-entry TTL, prefix invalidation and single-flight loads.

    Contract every implementation keeps:

    - ``get`` never returns an expired value; a miss is ``NO_VALUE``, never ``None``.
    - ``delete``, ``delete_prefix`` and ``clear`` are invalidations: a load that was in
      flight for an affected key does not store its result, and a caller arriving after
      the invalidation starts a fresh load instead of joining the old one.
    - ``ttl=None`` means the implementation's default TTL.
    """

    def get(self, key: str) -> object: ...

    def set(self, key: str, value: object, ttl: float | None = None) -> None: ...

    def delete(self, key: str) -> bool: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def clear(self) -> int: ...

    def __contains__(self, key: object) -> bool:
        """A live entry is stored; counts neither a hit nor a miss."""
        ...

    def __len__(self) -> int: ...

    def stats(self) -> CacheStats: ...

    async def get_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[V]],
        ttl: float | None = None,
        *,
        stale: Stale | None = None,
    ) -> V:
        """The value, or ``loader``'s, once for all concurrent misses; with ``stale``, a
        failed or slow load may be answered with the value kept past its deadline."""
        ...
