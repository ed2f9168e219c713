"""The bus over PostgreSQL LISTEN/NOTIFY, for deployments without Redis.

Two raw asyncpg connections of its own, outside the SQLAlchemy pool: one LISTENs for the
whole life of the instance (a pooled connection would be handed to a request), and one
sends, one NOTIFY at a time. Both are checked by a heartbeat. NOTIFY payloads are capped
by PostgreSQL at 8000 bytes: a longer invalidation is sent as "drop everything", which
is always correct, only costlier.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncEngine

from bannertrack.caching.bus._base import Apply, Bus, OnState

_MAX_PAYLOAD = 7900
_CONNECT_KEYS = ("host", "port", "user", "password", "database", "ssl", "server_settings")


def asyncpg_connect_args(engine: AsyncEngine) -> dict[str, Any]:
    """What ``asyncpg.connect`` needs to reach the engine's database (any URL form)."""
    _, opts = engine.dialect.create_connect_args(engine.url)
    return {k: v for k, v in opts.items() if k in _CONNECT_KEYS}


class PostgresBus(Bus):
    kind = "postgres"

    def __init__(
        self,
        connect_args: dict[str, Any],
        apply: Apply,
        on_state: OnState | None = None,
        *,
        channel: str = "bannertrack_invalidate",
        timeout: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(apply, on_state, **kwargs)
        self.channel = channel
        self._connect_args = {**connect_args, "timeout": timeout}
        self._timeout = timeout
        self._listener: asyncpg.Connection | None = None
        self._sender: asyncpg.Connection | None = None
        self._send_lock = asyncio.Lock()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(**self._connect_args)
        self._listener = conn
        conn.add_termination_listener(lambda _conn: self._lost.set())
        await conn.add_listener(self.channel, self._notified)
        if self._sender is None or self._sender.is_closed():
            self._sender = await asyncpg.connect(**self._connect_args)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            data = base64.b64decode(payload, validate=True)
        except ValueError:
            self.received += 1
            self.malformed += 1
            return
        self._received(data)

    async def _listen(self) -> None:
        listener = self._listener
        assert listener is not None
        while True:
            try:
                await asyncio.wait_for(self._lost.wait(), self._heartbeat)
            except TimeoutError:
                await listener.fetchval("SELECT 1", timeout=self._timeout)
                continue
            return

    async def _disconnect(self) -> None:
        for name in ("_listener", "_sender"):
            conn: asyncpg.Connection | None = getattr(self, name)
            setattr(self, name, None)
            if conn is not None:
                conn.terminate()  # no round trip: the connection may be dead already

    def carry(self, keys: Sequence[str], prefixes: Sequence[str]) -> tuple[str, str] | None:
        # NOTIFY is transactional: sent by the write's own statement, it reaches the other
        # instances when, and only if, the write commits, whatever this instance's own
        # listener is doing, and it costs the write no round trip of its own.
        return self.channel, self._payload(self._encode(keys, prefixes))

    def _payload(self, message: bytes) -> str:
        payload = base64.b64encode(message).decode()  # NOTIFY carries text
        if len(payload) > _MAX_PAYLOAD:
            payload = base64.b64encode(self._encode((), ("",))).decode()
        return payload

    async def _send(self, keys: Sequence[str], prefixes: Sequence[str], message: bytes) -> None:
        payload = self._payload(message)
        async with self._send_lock:
            sender = self._sender
            if sender is None or sender.is_closed():
                raise ConnectionError("no NOTIFY connection")
            await sender.execute(
                "SELECT pg_notify($1, $2)", self.channel, payload, timeout=self._timeout
            )

    async def _announce_recovery(self) -> None:
        await self._send((), ("",), self._encode((), ("",)))
