"""The database side of a spooled batch's replay (``clicks/spool.py``): exactly once.

``claim`` inserts a batch's idempotency key in the replay's own transaction: it commits
with the batch or not at all, so a replay that committed is recognised after any crash
and stores nothing again. Several spooled batches may be replayed in one transaction
(each with its key): only those whose key is new are stored.

A batch is *in doubt* when a live write of it was under way when it was spooled (the
commit hung or the connection broke mid-commit): that write may have committed. Before
storing it, the replay waits for the writes of its banners still running on the server
(a frozen PostgreSQL thawing), ``wait_for_writes``: every click batch holds its banners
``FOR KEY SHARE`` until it ends, which only ``FOR UPDATE`` waits for, so the replay
takes each banner ``FOR UPDATE`` in a short transaction of its own, one banner at a time:
a waiter that holds nothing else cannot close a cycle. (It used to take the batch's
``banner_totals`` rows in its own transaction, before the visitor rows: a click batch of
the same visitor holds the visitor row and then waits for the totals row, the writers'
order, so the two deadlocked.) Then the replay's transaction looks for the batch's
clicks, in the click writers' lock order throughout. A batch
commits whole, so finding every click whose banner still exists (by banner, time to the
microsecond and visitor key, on ``ix_clicks_banner_occurred``) means it was stored; its
key is kept and nothing else is written. The one false positive: another batch holding a
click of the same banner at the same microsecond with the same visitor and agent for
every click of this batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bannertrack.db.sql import insert_for
from bannertrack.db.tables import banners, clicks, replayed_batches
from bannertrack.models import ClickIn

KEEP_KEYS = timedelta(days=30)


async def claim(conn: AsyncConnection, dialect: str, key: str, now: datetime) -> bool:
    """Record ``key``; False when it was recorded before (the batch is stored)."""
    ins = insert_for(dialect, replayed_batches).values(key=key, replayed_at=now)
    result = await conn.execute(ins.on_conflict_do_nothing(index_elements=[replayed_batches.c.key]))
    return bool(result.rowcount == 1)


async def forget_old(conn: AsyncConnection, now: datetime) -> None:
    """Housekeeping that rides along: a key older than any spool can be is not needed."""
    await conn.execute(
        delete(replayed_batches).where(replayed_batches.c.replayed_at < now - KEEP_KEYS)
    )


async def wait_for_writes(engine: AsyncEngine, batch: Sequence[ClickIn]) -> None:
    """Wait for any write of these banners still running (see the module docstring);
    PostgreSQL only (on SQLite the replay's transaction holds the one write lock)."""
    for banner_id in sorted({c.banner_id for c in batch}):
        async with engine.begin() as conn:
            lock = select(banners.c.id).where(banners.c.id == banner_id).with_for_update()
            await conn.execute(lock)


async def stored_before(conn: AsyncConnection, batch: Sequence[ClickIn]) -> bool:
    """Whether every click of the batch whose banner exists is in ``clicks`` already."""
    ids = sorted({c.banner_id for c in batch})
    present = set((await conn.execute(select(banners.c.id).where(banners.c.id.in_(ids)))).scalars())
    wanted = Counter(
        (c.banner_id, c.occurred_at, c.visitor, c.user_agent)
        for c in batch
        if c.banner_id in present
    )
    if not wanted:
        return False
    k = clicks.c
    rows = await conn.execute(
        select(k.banner_id, k.occurred_at, k.visitor, k.user_agent).where(
            tuple_(k.banner_id, k.occurred_at).in_(sorted({(b, t) for b, t, _, _ in wanted}))
        )
    )
    found = Counter((int(b), _utc(t), v, a) for b, t, v, a in rows)
    return all(found[key] >= n for key, n in wanted.items())


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
