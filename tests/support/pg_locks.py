"""PostgreSQL's view of who waits for a lock: tests that hold a writer at a row lock wait
for it to be waiting there (``wait_until``) before they probe the next lock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_WAITING = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


def waiting_for_locks(engine: AsyncEngine, n: int) -> Callable[[], Awaitable[bool]]:
    """Whether at least ``n`` sessions on ``engine``'s database wait for a lock."""

    async def check() -> bool:
        async with engine.connect() as conn:
            return int((await conn.execute(text(_WAITING))).scalar_one()) >= n

    return check
