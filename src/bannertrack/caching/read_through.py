"""Read through the cache, where a failing cache never fails the read.

A loader's own error (the database is down, say) reaches the caller unchanged, exactly as
without a cache, unless the read may be answered stale (``serving``): then an error that
``usable`` accepts, or a load slower than ``wait()``, is answered with the value the cache
kept past its deadline (``bannertrack.cache.Stale``). An error of the cache itself (a bug,
an L2 tier that is down) is logged and the read goes straight to the loader: the cache
only ever makes a read faster.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bannertrack.cache import Cache, Stale

log = logging.getLogger("bannertrack.cache")

T = TypeVar("T")


class _LoaderFailed(Exception):
    """Carries an error of the loader through the cache untouched."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def serving(usable: Callable[[BaseException], bool], wait: Callable[[], float]) -> Stale:
    """The ``Stale`` of a read through ``read_through``: ``usable`` sees the loader's error."""

    def loader_error(exc: BaseException) -> bool:
        return isinstance(exc, _LoaderFailed) and usable(exc.error)

    return Stale(loader_error, wait)


async def read_through(
    cache: Cache,
    key: str,
    load: Callable[[], Awaitable[T]],
    ttl: float,
    stale: Stale | None = None,
) -> T:
    async def guarded() -> T:
        try:
            return await load()
        except Exception as exc:
            raise _LoaderFailed(exc) from exc

    try:
        if stale is None:
            return await cache.get_or_load(key, guarded, ttl)
        return await cache.get_or_load(key, guarded, ttl, stale=stale)
    except _LoaderFailed as failed:
        raise failed.error from None
    except Exception:
        log.exception("cache failed on %s; reading the database directly", key)
        return await load()
