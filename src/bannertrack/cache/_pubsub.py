"""The tier's pub/sub connection, for the invalidation bus: redis-py stays in ``cache/``.

A subscription is one dedicated connection of the tier's Redis. Its errors are mapped
the way the tier maps its own (``RedisError``, ``OSError``, ``TimeoutError`` ->
``TierUnavailable``), so the bus sees one exception tree whatever the transport.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from redis.exceptions import RedisError


class TierUnavailable(Exception):
    """The second tier could not answer; callers fall back to L1 and the database."""


@contextmanager
def mapped_errors() -> Iterator[None]:
    try:
        yield
    except (TimeoutError, RedisError, OSError) as exc:
        raise TierUnavailable(f"redis: {exc}") from exc


class TierSubscription:
    """``subscribe``, ``get_message``, ``ping`` and ``aclose`` of a redis-py ``PubSub``."""

    __slots__ = ("_pubsub",)

    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub

    async def subscribe(self, channel: str) -> None:
        with mapped_errors():
            await self._pubsub.subscribe(channel)

    async def get_message(self, wait: float) -> dict[str, Any] | None:
        """The next message, or ``None`` when none came within ``wait`` seconds."""
        with mapped_errors():
            message: dict[str, Any] | None = await self._pubsub.get_message(timeout=wait)
        return message

    async def ping(self) -> None:
        with mapped_errors():
            await self._pubsub.ping()

    async def aclose(self) -> None:
        with mapped_errors():
            await self._pubsub.aclose()
