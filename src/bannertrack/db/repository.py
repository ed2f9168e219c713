"""``SqlRepository``: the ``Repository`` protocol on SQLAlchemy Core, SQLite or PostgreSQL.

Clicks are written with their repeat flags and rollups (``banner_totals``,
``click_minutes``, ``click_breakdowns``) in one transaction (``click_writes``,
``breakdown_writes``; on a SQLite file ``sqlite_clicks``, in a writer thread of its own;
on PostgreSQL ``pg_clicks``, one statement, two when a visitor clicks twice in a batch),
so every statistic can be read from small tables and is exact (``stats_queries``). This
module holds the transactions, banners and impressions; the statistics reads are in
``reads``, salts, retention and export in ``maintenance``.

Over 300 lines on purpose: one class, the write side of the ``Repository`` protocol and
the spool's replays, whose methods are each a short transaction over the writers named
above (impressions: ``impression_writes``); what grows goes to those modules.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from msgspec import UNSET
from sqlalchemy import (
    func,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bannertrack.conversions.values import ConversionIn, ExportedConversion, Recorded
from bannertrack.db import conversion_queries, conversion_writes, replay
from bannertrack.db.breakdown_writes import BreakdownFold
from bannertrack.db.click_writes import flag_repeats, insert_clicks
from bannertrack.db.conversion_batches import ConversionBatches
from bannertrack.db.engine import DbTimeouts, count_queries, create_engine
from bannertrack.db.errors import map_db_errors
from bannertrack.db.impression_writes import add_impressions
from bannertrack.db.pg_clicks import write_clicks
from bannertrack.db.placements import SqlPlacements
from bannertrack.db.reads import SqlReads
from bannertrack.db.sql import banner_from_row, codes_column
from bannertrack.db.sqlite_clicks import BatchResult, SqliteClickWriter
from bannertrack.db.tables import (
    CLICK_TABLES,
    banner_totals,
    banners,
)
from bannertrack.errors import InvalidInputError
from bannertrack.models import (
    Banner,
    BannerCreate,
    BannerPage,
    BannerUpdate,
    ClickIn,
    ImpressionCount,
    RecordedClick,
)
from bannertrack.repository import Notify
from bannertrack.timeutil import utcnow

_TAKE_WRITE_LOCK = text("UPDATE banners SET id = id WHERE 0")


class SqlRepository(SqlReads, SqlPlacements):
    """The ``Repository`` protocol: writes here, statistics inherited from ``SqlReads``,
    maintenance (``Housekeeping``, ``ClickArchive``) from ``SqlMaintenance``."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Callable[[], datetime] = utcnow,
        dedup_window: float = 3600.0,
        breakdown_top_n: int = 50,
        sqlite_writer: bool = True,
    ) -> None:
        """``sqlite_writer=False`` keeps SQLite's click batches on the SQLAlchemy path: the
        reference the writer thread is tested against, byte for byte."""
        super().__init__(engine)
        self.queries = count_queries(engine)
        self._clock = clock
        # Every instance on one database must use the same window, or they disagree.
        self._window_us = int(dedup_window * 1_000_000)
        self._fold = BreakdownFold(breakdown_top_n)
        # SQLite files: click batches go to a writer thread of their own (sqlite_clicks).
        self._sqlite_clicks = (
            SqliteClickWriter.for_engine(engine, self._fold) if sqlite_writer else None
        )
        # SQLite: this process's conversion reports take the write lock one at a time.
        self._sqlite_conversions = asyncio.Lock()
        self._conversions = ConversionBatches(self._write_conversions, self._write_conversion)

    @classmethod
    def from_url(
        cls,
        database_url: str,
        *,
        pool_size: int = 10,
        dedup_window: float = 3600.0,
        breakdown_top_n: int = 50,
        timeouts: DbTimeouts | None = None,
        clock: Callable[[], datetime] = utcnow,
        sqlite_writer: bool = True,
    ) -> SqlRepository:
        return cls(
            create_engine(database_url, pool_size=pool_size, timeouts=timeouts),
            clock=clock,
            dedup_window=dedup_window,
            breakdown_top_n=breakdown_top_n,
            sqlite_writer=sqlite_writer,
        )

    @property
    def sqlite_click_writer(self) -> SqliteClickWriter | None:
        """The thread that writes click batches to a SQLite file; ``None`` when they go
        through SQLAlchemy (PostgreSQL, an in-memory database, ``sqlite_writer=False``)."""
        return self._sqlite_clicks

    # banners -------------------------------------------------------------------------

    async def create_banner(self, data: BannerCreate) -> Banner:
        now = self._clock()
        async with self._tx() as conn:
            row = (
                await conn.execute(
                    banners.insert()
                    .values(
                        name=data.name,
                        image_url=data.image_url,
                        target_url=data.target_url,
                        active=data.active,
                        forward_query=data.forward_query,
                        click_id_param=data.click_id_param,
                        created_at=now,
                        updated_at=now,
                        starts_at=data.starts_at,
                        ends_at=data.ends_at,
                        countries=codes_column(data.countries),
                        devices=codes_column(data.devices),
                        cap_per_day=data.cap_per_day,
                    )
                    .returning(*banners.c)
                )
            ).one()
            await conn.execute(banner_totals.insert().values(banner_id=row.id, total_clicks=0))
        return banner_from_row(row)

    async def get_banner(self, banner_id: int) -> Banner | None:
        async with self._read() as conn:
            return await self._get_banner(conn, banner_id)

    async def list_banners(self, offset: int, limit: int) -> BannerPage:
        async with self._read() as conn:
            total = (await conn.execute(select(func.count()).select_from(banners))).scalar_one()
            rows = await conn.execute(
                banners.select().order_by(banners.c.id).offset(offset).limit(limit)
            )
            items = tuple(banner_from_row(r) for r in rows)
        return BannerPage(items=items, total=total, offset=offset, limit=limit)

    async def update_banner(self, banner_id: int, data: BannerUpdate) -> Banner | None:
        values: dict[str, Any] = {
            name: getattr(data, name)
            for name in data.__struct_fields__
            if getattr(data, name) is not UNSET
        }
        for name in ("countries", "devices"):
            if name in values:
                values[name] = codes_column(values[name])
        values["updated_at"] = self._clock()
        async with self._tx() as conn:
            row = (
                await conn.execute(
                    banners.update()
                    .where(banners.c.id == banner_id)
                    .values(**values)
                    .returning(*banners.c)
                )
            ).first()
            # One bound given now, the other stored before: only the row has both (the
            # request's own pair was checked by placements.rules). Raising rolls back.
            if row is not None and row.starts_at and row.ends_at and row.ends_at <= row.starts_at:
                raise InvalidInputError("ends_at must be after starts_at")
        return None if row is None else banner_from_row(row)

    async def delete_banner(self, banner_id: int) -> bool:
        """Delete the banner and, in the same transaction, its rows in every table.

        ``banner_totals`` and ``impression_minutes`` go by their cascading foreign key;
        the tables a click batch inserts into have none (``tables``), so they are cleared
        here, after the banner row: its delete waits for the batches that hold the banner
        (``FOR KEY SHARE``; on SQLite the write lock), and a batch that comes later finds
        the banner gone and stores nothing for it."""
        async with self._tx() as conn:
            result = await conn.execute(banners.delete().where(banners.c.id == banner_id))
            if result.rowcount:
                for table in CLICK_TABLES:
                    await conn.execute(table.delete().where(table.c.banner_id == banner_id))
        return bool(result.rowcount)

    # clicks --------------------------------------------------------------------------

    async def record_clicks(self, batch: Sequence[ClickIn]) -> list[RecordedClick | None]:
        return await self._record_clicks(batch, None)

    @property
    def carries_notify(self) -> bool:
        return self._dialect == "postgresql"

    async def record_clicks_notifying(
        self, batch: Sequence[ClickIn], notify: Notify
    ) -> list[RecordedClick | None]:
        if not self.carries_notify:
            raise ValueError("only a PostgreSQL click batch can carry a NOTIFY")
        return await self._record_clicks(batch, notify)

    async def _record_clicks(
        self, batch: Sequence[ClickIn], notify: Notify | None
    ) -> list[RecordedClick | None]:
        if not batch:
            return []
        written: BatchResult | None = None
        if self._sqlite_clicks is not None:
            written = await self._sqlite_clicks.record_clicks(batch, self._window_us)
        if written is None:
            written = await self._write_clicks(batch, notify)
        return _recorded(batch, written)

    async def replay_clicks(
        self, groups: Sequence[tuple[str, Sequence[ClickIn]]], in_doubt: bool
    ) -> list[bool]:
        """Spooled batches, exactly once, in one transaction (``db.replay``): each batch's
        key, then the clicks of those whose key was new, with their flags and every
        rollup. An ``in_doubt`` batch (one) found stored already keeps only its key."""
        if in_doubt and len(groups) != 1:
            raise ValueError("an in-doubt batch is replayed alone")
        now = self._clock()
        if in_doubt and self._dialect == "postgresql":
            with map_db_errors():
                await replay.wait_for_writes(self.engine, groups[0][1])
        async with self._tx() as conn:
            await self._write_lock_first(conn)
            fresh = [await replay.claim(conn, self._dialect, key, now) for key, _ in groups]
            batch = [
                c for (_, clicks), new in zip(groups, fresh, strict=True) if new for c in clicks
            ]
            if not batch:
                return fresh
            await replay.forget_old(conn, now)
            if in_doubt and await replay.stored_before(conn, batch):
                return [False]
            await self._write_generic(conn, batch)
        return fresh

    async def replay_impressions(self, key: str, counts: Sequence[ImpressionCount]) -> bool:
        """Spooled impressions, exactly once; False when their key was stored before."""
        async with self._tx() as conn:
            await self._write_lock_first(conn)
            now = self._clock()
            if not await replay.claim(conn, self._dialect, key, now):
                return False
            await replay.forget_old(conn, now)
            await add_impressions(conn, self._dialect, counts)
        return True

    async def _write_clicks(self, batch: Sequence[ClickIn], notify: Notify | None) -> BatchResult:
        """The batch through SQLAlchemy's connection: PostgreSQL (``db.pg_clicks``), and
        SQLite where sqlite_clicks does not."""
        if self._dialect == "postgresql":
            with map_db_errors():
                async with self.engine.connect() as conn:
                    written = await write_clicks(conn, self._window_us, self._fold, batch, notify)
                    # The one-statement batch committed by itself; the two-statement one
                    # (and a fold's first read of a day) opened a transaction.
                    if conn.in_transaction():
                        await conn.commit()
            return BatchResult(*written)
        async with self._tx() as conn:
            await self._write_lock_first(conn)
            return await self._write_generic(conn, batch)

    async def _write_generic(self, conn: AsyncConnection, batch: Sequence[ClickIn]) -> BatchResult:
        """The batch through SQLAlchemy's statements, in the caller's transaction."""
        wanted = sorted({c.banner_id for c in batch})
        exists = select(banners.c.id).where(banners.c.id.in_(wanted)).order_by(banners.c.id)
        if self._dialect == "postgresql":
            exists = exists.with_for_update(read=True, key_share=True)  # FOR KEY SHARE
        present = set((await conn.execute(exists)).scalars())
        keep = [c for c in batch if c.banner_id in present]
        ids: list[int] = []
        repeats: list[bool] = []
        if keep:
            repeats = await flag_repeats(conn, self._dialect, self._window_us, keep)
            ids = await insert_clicks(conn, self._dialect, self._fold, keep, repeats)
        return BatchResult(present, ids, repeats)

    # conversions ---------------------------------------------------------------------

    async def record_conversion(self, data: ConversionIn, window: timedelta) -> Recorded:
        """The conversion and its rollups, committed with the reports that wait meanwhile
        (``db/conversion_batches.py``, ``conversion_writes``).

        A retry of a stored (click id, goal) is answered from a plain read, without a write
        transaction. On SQLite the write lock is taken first (a deferred transaction that
        read before another report committed could not write after it), and this process's
        batches queue for it here: waiting on SQLite's busy handler instead sleeps in steps
        of up to 100 ms, which cut conversions per second several times (bench/conversions.py).
        """
        async with self._read() as conn:
            first = await conversion_writes.stored(conn, data)
        if first is not None:
            return Recorded(conversion=first, created=False)
        return await self._conversions.record(data, window)

    async def _write_conversions(
        self, batch: Sequence[tuple[ConversionIn, timedelta]]
    ) -> list[conversion_writes.Outcome]:
        """A batch of new reports in one transaction (``db/conversion_batches.py``)."""
        async with self._conversion_turn(), self._tx() as conn:
            await self._write_lock_first(conn)
            return await conversion_writes.record_conversions(conn, self._dialect, batch)

    async def _write_conversion(self, item: tuple[ConversionIn, timedelta]) -> Recorded:
        async with self._conversion_turn(), self._tx() as conn:
            await self._write_lock_first(conn)
            return await conversion_writes.record_conversion(conn, self._dialect, *item)

    def _conversion_turn(self) -> contextlib.AbstractAsyncContextManager[object]:
        if self._dialect != "sqlite":
            return contextlib.nullcontext()
        return self._sqlite_conversions

    async def export_conversions(
        self,
        banner_id: int,
        start: datetime,
        end: datetime,
        after: tuple[datetime, int] | None,
        limit: int,
    ) -> list[ExportedConversion]:
        async with self._read() as conn:
            return await conversion_queries.export_page(conn, banner_id, start, end, after, limit)

    # impressions ---------------------------------------------------------------------

    async def _write_lock_first(self, conn: AsyncConnection) -> None:
        """On SQLite, take the write lock before the batch reads which banners exist.

        SQLite begins a transaction without locking and takes the write lock at its first
        write; a banner deleted between this batch's existence check and its insert would
        then get rows after its delete had cleared them (or fail on a foreign key). A
        write that matches no row takes the lock at once (PostgreSQL gets the same from
        FOR KEY SHARE on the banner rows).
        """
        if self._dialect == "sqlite":
            await conn.execute(_TAKE_WRITE_LOCK)

    async def record_impressions(self, counts: Sequence[ImpressionCount]) -> None:
        async with self._tx() as conn:
            await self._write_lock_first(conn)
            await add_impressions(conn, self._dialect, counts)

    async def impressions(self, banner_ids: Sequence[int]) -> dict[int, int]:
        t = banner_totals.c
        async with self._read() as conn:
            rows = await conn.execute(
                select(t.banner_id, t.impressions).where(t.banner_id.in_(banner_ids))
            )
            return {int(b): int(n) for b, n in rows}

    # health --------------------------------------------------------------------------

    async def ping(self) -> None:
        async with self._read() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        if self._sqlite_clicks is not None:
            await self._sqlite_clicks.close()
        await self.engine.dispose()


def _recorded(batch: Sequence[ClickIn], written: BatchResult) -> list[RecordedClick | None]:
    """Each click's answer in batch order: its id and flags, or ``None`` (banner gone)."""
    present, ids, repeats = written.present, written.ids, written.repeats
    out: list[RecordedClick | None] = []
    it = iter(zip(ids, repeats, strict=True))
    for c in batch:
        if c.banner_id in present:
            click_id, repeat = next(it)
            out.append(
                RecordedClick(
                    id=click_id,
                    banner_id=c.banner_id,
                    occurred_at=c.occurred_at,
                    bot=c.bot,
                    bot_reason=c.bot_reason,
                    repeat=repeat,
                )
            )
        else:
            out.append(None)
    return out
