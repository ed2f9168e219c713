"""``SqlMaintenance``: salts, retention and export, the maintenance half of the adapter.

None of it is on a request's path: the daily visitor salt, the bounded deletes of
retention, and keyset-paged reads of raw clicks for export. ``SqlRepository`` derives
from it, so one object (one engine, one pool) serves both halves, while retention and
export see only the ``Housekeeping`` and ``ClickArchive`` protocols.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime

from sqlalchemy import delete, func, literal, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bannertrack.db.errors import map_db_errors
from bannertrack.db.sql import insert_for, micros
from bannertrack.db.tables import banners, click_minutes, clicks, visitor_clicks, visitor_salts
from bannertrack.models import ExportedClick, SealedSalt
from bannertrack.timeutil import floor_to


class SqlMaintenance:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name

    @property
    def dialect(self) -> str:
        return self._dialect

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        with map_db_errors():
            async with self.engine.begin() as conn:
                yield conn

    async def restart_banner_ids(self) -> bool:
        """Hand out banner ids from 1 again, if no banner exists; True if it did.

        Ids are otherwise never reused (an old tracking link must not count for a new
        banner); only ``bannertrack demo --reset``, which has just deleted every banner
        with its clicks, asks for this, so its demo ids are the README's.
        """
        async with self._tx() as conn:
            if await conn.scalar(select(func.count()).select_from(banners)):
                return False
            if self._dialect == "sqlite":
                await conn.execute(text("DELETE FROM sqlite_sequence WHERE name = 'banners'"))
            else:
                await conn.execute(
                    text("SELECT setval(pg_get_serial_sequence('banners', 'id'), 1, false)")
                )
            return True

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        with map_db_errors():
            async with self.engine.connect() as conn:
                yield conn

    # visitor salts -------------------------------------------------------------------

    async def sealed_salt(self, day: date, offer: SealedSalt) -> SealedSalt:
        """The sealed salt of ``day``, the same for every instance; older salts are deleted.

        The first instance to ask stores its ``offer``; a concurrent insert loses quietly
        (ON CONFLICT DO NOTHING) and everyone reads the row that won. Only the sealed
        form is stored: the key that unseals it never reaches the database (salt_key.py).
        """
        s = visitor_salts.c
        async with self._tx() as conn:
            await conn.execute(
                insert_for(self._dialect, visitor_salts)
                .values(day=day, sealed=offer.sealed, key_check=offer.key_check)
                .on_conflict_do_nothing(index_elements=[s.day])
            )
            row = (await conn.execute(select(s.sealed, s.key_check).where(s.day == day))).one()
            await conn.execute(delete(visitor_salts).where(s.day < day))
        return SealedSalt(bytes(row.sealed), bytes(row.key_check))

    # retention -----------------------------------------------------------------------

    async def banner_ids(self) -> list[int]:
        async with self._read() as conn:
            return list((await conn.execute(select(banners.c.id).order_by(banners.c.id))).scalars())

    async def delete_clicks_before(self, banner_id: int, cutoff: datetime, limit: int) -> int:
        """Delete at most ``limit`` raw clicks of one banner older than ``cutoff``.

        Per banner, so the (banner_id, occurred_at) index finds them; the rollups are
        not touched, so no count changes.
        """
        c = clicks.c
        doomed = (
            select(c.id)
            .where(c.banner_id == banner_id, c.occurred_at < cutoff)
            .order_by(c.occurred_at)
            .limit(limit)
        )
        async with self._tx() as conn:
            result = await conn.execute(delete(clicks).where(c.id.in_(doomed.scalar_subquery())))
        return int(result.rowcount)

    async def purge_visitors(self, older_than: datetime, limit: int) -> int:
        """Forget at most ``limit`` visitors whose window ended before ``older_than``.

        On PostgreSQL a row a click batch holds is skipped (``SKIP LOCKED``), not waited
        for: rows taken in scan order could deadlock with a batch, which takes them in key
        order, and a row waited for was deleted even when the batch had just moved its
        window (the delete's ``IN`` still matched it), forgetting the visitor's click.
        A row left now goes with a later run."""
        v = visitor_clicks.c
        doomed = (
            select(v.banner_id, v.visitor)
            .where(v.counted_us < micros(older_than))
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite renders no locking
        )
        async with self._tx() as conn:
            result = await conn.execute(
                delete(visitor_clicks).where(tuple_(v.banner_id, v.visitor).in_(doomed))
            )
        return int(result.rowcount)

    # export --------------------------------------------------------------------------

    async def export_page(
        self,
        banner_id: int,
        start: datetime,
        end: datetime,
        after: tuple[datetime, int] | None,
        limit: int,
    ) -> list[ExportedClick]:
        """One page of raw clicks in ``[start, end)``, ordered by (occurred_at, id).

        Keyset paging: the next page starts after the last row of this one, so a long
        export holds no cursor or connection between pages and costs the same per page.
        """
        c = clicks.c
        query = (
            select(
                c.id,
                c.occurred_at,
                c.visitor,
                c.user_agent,
                c.referrer,
                c.bot,
                c.bot_reason,
                c.repeat,
            )
            .where(c.banner_id == banner_id, c.occurred_at >= start, c.occurred_at < end)
            .order_by(c.occurred_at, c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(
                tuple_(c.occurred_at, c.id)
                > tuple_(literal(after[0], type_=clicks.c.occurred_at.type), literal(after[1]))
            )
        async with self._read() as conn:
            rows = await conn.execute(query)
            return [
                ExportedClick(
                    id=r.id,
                    occurred_at=r.occurred_at,
                    visitor=r.visitor,
                    user_agent=r.user_agent,
                    referrer=r.referrer,
                    bot=bool(r.bot),
                    bot_reason=r.bot_reason,
                    repeat=bool(r.repeat),
                )
                for r in rows
            ]

    async def clicks_in_range(self, banner_id: int, start: datetime, end: datetime) -> int:
        """Clicks of the minutes overlapping ``[start, end)``, from the rollup: an upper
        bound of the rows an export of that range holds (a progress bar's total)."""
        m = click_minutes.c
        async with self._read() as conn:
            n = (
                await conn.execute(
                    select(func.coalesce(func.sum(m.clicks), 0)).where(
                        m.banner_id == banner_id,
                        m.minute >= floor_to(start, 60),
                        m.minute < end,
                    )
                )
            ).scalar_one()
        return int(n)
