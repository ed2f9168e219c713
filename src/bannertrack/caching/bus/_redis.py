"""The bus over Redis pub/sub, sharing its Redis with the L2 tier.

Publishing is the tier's invalidation script with the message attached: L2 is cleaned
and the message sent in one atomic step, so an instance that hears of a write can no
longer find the old value in L2. The subscriber is one dedicated connection; it pings
every ``heartbeat`` seconds when idle and gives up on a connection that has not
answered for three heartbeats, so a silently dead network is noticed too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Protocol

from bannertrack.cache import RedisTier
from bannertrack.caching.bus._base import Apply, Bus, OnState


class _Subscription(Protocol):
    """What ``RedisTier.subscription()`` gives: its errors are the tier's (mapped there)."""

    async def subscribe(self, channel: str) -> None: ...

    async def get_message(self, wait: float) -> dict[str, Any] | None: ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


class RedisBus(Bus):
    kind = "redis"

    def __init__(
        self, tier: RedisTier, apply: Apply, on_state: OnState | None = None, **kwargs: Any
    ) -> None:
        super().__init__(apply, on_state, **kwargs)
        self.tier = tier
        self.channel = f"{tier.prefix}invalidate"
        self._pubsub: _Subscription | None = None

    async def _connect(self) -> None:
        pubsub = self.tier.subscription()
        self._pubsub = pubsub
        await pubsub.subscribe(self.channel)
        # Wait for the confirmation: only then is no message published from now on missed.
        deadline = time.monotonic() + 2 * self._heartbeat + 1
        while True:
            reply = await pubsub.get_message(max(0.01, deadline - time.monotonic()))
            if reply is not None and reply["type"] == "subscribe":
                break
            if time.monotonic() > deadline:
                raise TimeoutError("no subscribe confirmation from redis")
        self.tier.reset_circuit()

    async def _listen(self) -> None:
        pubsub = self._pubsub
        assert pubsub is not None  # _connect ran first
        last_seen = time.monotonic()
        while not self._lost.is_set():
            reply = await pubsub.get_message(self._heartbeat)
            now = time.monotonic()
            if reply is None:
                if now - last_seen > 3 * self._heartbeat:
                    raise TimeoutError("redis did not answer the bus heartbeat")
                await pubsub.ping()
                continue
            last_seen = now
            if reply["type"] == "message":
                self._received(reply["data"])

    async def _disconnect(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            await asyncio.shield(pubsub.aclose())

    async def _send(self, keys: Sequence[str], prefixes: Sequence[str], message: bytes) -> None:
        await self.tier.invalidate(keys, prefixes, channel=self.channel, message=message)

    async def _announce_recovery(self) -> None:
        # A new epoch drops all of L2 (it may hold what skipped publishes would have
        # removed); the message makes every instance drop its L1.
        message = self._encode((), ("",))
        await self.tier.invalidate((), ("",), channel=self.channel, message=message)
