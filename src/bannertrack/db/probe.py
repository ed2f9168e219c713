"""A cheap write to the database, so ``/healthz`` can say whether clicks can be written.

A read (``SELECT 1``) succeeds on a full disk or a read-only database file while every
click fails. The probe rewrites the one row of ``alembic_version`` with its own value in
a transaction: a real write (SQLite writes the page, PostgreSQL a new row version) that
changes nothing. It runs at most once per interval, whatever the request rate, and only
one at a time; callers in between get the last result.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bannertrack.db.errors import map_db_errors

_PROBE = text("UPDATE alembic_version SET version_num = version_num")


class WriteProbe:
    def __init__(self, engine: AsyncEngine, interval: float = 5.0) -> None:
        self._engine = engine
        self._interval = interval
        self._checked_at: float | None = None
        self._error: str | None = None
        self._lock = asyncio.Lock()

    async def check(self) -> str | None:
        """None when the last probe wrote; else why it could not."""
        if self._fresh() or self._lock.locked():
            return self._error
        async with self._lock:
            if not self._fresh():
                self._error = await self._probe()
                self._checked_at = time.monotonic()
        return self._error

    def _fresh(self) -> bool:
        return self._checked_at is not None and time.monotonic() - self._checked_at < self._interval

    async def _probe(self) -> str | None:
        try:
            with map_db_errors():
                async with self._engine.connect() as conn:
                    sqlite = conn.dialect.name == "sqlite"
                    if sqlite:
                        # Never wait for another writer's lock: a locked database is
                        # being written to, which is what the probe wants to know, and a
                        # probe queued behind it would hold /healthz for the busy timeout.
                        await conn.exec_driver_sql("PRAGMA busy_timeout=0")
                        await conn.commit()
                    try:
                        await conn.execute(_PROBE)
                        await conn.commit()
                    finally:
                        if sqlite:  # the connection's own busy timeout is set when it opens
                            await conn.invalidate()
        except Exception as exc:  # any failure is the answer, not an error of /healthz
            cause = exc.__cause__ or exc
            message = str(cause).splitlines()[0] if str(cause) else ""
            if "database is locked" in message:
                return None  # another writer holds the lock: writes are happening
            return f"{type(cause).__name__}: {message}"
        return None
