"""A worker's in-memory copy of the recent raw clicks, kept equal to ``clicks`` for exact
filtered figures (``click_columns``).

Fed from the database, never from the click path: loaded in the background at the first
filtered read (that read and those until the copy is ready ask the database), then, before
each answer, caught up with the rows after its high-water mark (``clicks.id > mark``, the
primary key). So a click is counted as soon as its batch is committed, by any worker or
instance, as in the SQL reads.

- **Out-of-order commits** (PostgreSQL): ids come from a sequence when a row is inserted,
  so two batches may commit in the other order, and the later ids be seen first. The ids
  skipped between the old mark and the new rows are gaps, asked for again before every
  answer until they appear, or until both they are older than ``gap_patience`` (tied to
  the statement timeout: a batch that took longer was cancelled) and every transaction
  that was running when they were seen has ended (``pg_current_snapshot()``): a
  rolled-back id never appears, and a long transaction (a replay) is waited for. After
  the load, gaps are the missing ids among the last ``GAP_WINDOW`` ids. SQLite has one
  writer at a time, so its ids commit in order and it needs none.
- **Deleted banners**: ``delete_banner`` deletes the banner's clicks with it; each
  catch-up reads the banner ids (after the rows) and drops the rows of a banner gone.
  Ids are never handed out again (AUTOINCREMENT on SQLite, a sequence on PostgreSQL).
- **Retention and the row cap**: the copy covers the clicks at or after its ``floor``, a UTC
  midnight: the first after the retention cutoff, later if the window holds more than
  ``rows`` clicks (then the oldest whole days stay in the database). A read reaching
  before the floor returns ``None`` and its caller asks the database (exact, slower).

Memory: about 29 bytes a click (``click_columns``) plus the room arrays keep to grow.

Longer than 300 lines on purpose: the load, the catch-up, the gaps, deleted banners and
the floor keep one invariant together (the copy equals the table from its floor on), and
each reads the others' state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import BigInteger, Integer, cast, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bannertrack.db.click_columns import CODED, US_PER_S, ClickColumns, us_of
from bannertrack.db.filtered_queries import Unindexed
from bannertrack.db.tables import banners, clicks
from bannertrack.models import CopyStats
from bannertrack.tasks import BackgroundTask, Lifecycle
from bannertrack.timeutil import utcnow

log = logging.getLogger("bannertrack.db.click_copy")
T = TypeVar("T")

DAY_US = 86_400 * US_PER_S
GAP_WINDOW = 4096  # ids below the loaded mark that may still commit (PostgreSQL)
GAP_LIMIT = 100_000  # more gaps than this: start again from a fresh load
RETRY_AFTER = 60.0  # seconds before a failed load is tried again
CATCH_UP = 5000  # rows a catch-up statement reads: ~15 ms to encode on the event loop
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The coded columns' sources, in CODED order after the banner.
_SOURCES = (
    "referrer_host", "utm_source", "utm_medium", "utm_campaign",
    "country", "device", "browser", "os", "placement_id",
)  # fmt: skip


def _time_us(dialect: str) -> Any:
    """``occurred_at`` as integer microseconds since the epoch, computed in the database."""
    at = clicks.c.occurred_at
    if dialect == "postgresql":  # extract() is numeric, exact to the microsecond
        return cast(func.floor(func.extract("epoch", at) * US_PER_S), BigInteger)
    # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff' (db/sqlite_clicks.stored_time).
    return cast(func.strftime("%s", at), Integer) * US_PER_S + cast(func.substr(at, 21, 6), Integer)


def gap_patience(statement_timeout: float) -> float:
    """How long a skipped id may still commit: a click batch is one statement (bounded by
    the timeout, then rolled back), a replay or a deletion a few; ample margin on top."""
    return 30.0 + 6 * statement_timeout


def _instant(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _next_midnight(us: int) -> int:
    """The first UTC midnight at or after ``us``."""
    return -(-us // DAY_US) * DAY_US


async def _horizon(conn: AsyncConnection, end: str) -> int:
    """PostgreSQL: the current snapshot's ``xmin`` (the oldest transaction still running)
    or ``xmax`` (the first not yet started)."""
    found = await conn.scalar(text(f"SELECT pg_snapshot_{end}(pg_current_snapshot())::text"))
    return int(found or 0)


class ClickCopy(Lifecycle):
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        rows: int,
        retention_days: int,
        gap_patience: float,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        chunk: int = 20_000,
        load_engine: Callable[[], AsyncEngine] | None = None,
    ) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._cap = rows
        self._keep_us = retention_days * DAY_US
        self._patience = gap_patience
        self._clock = clock
        self._monotonic = monotonic
        self._chunk = chunk
        self._load_engine = load_engine
        c = clicks.c
        flags = cast(c.bot, Integer) + 2 * cast(c.repeat, Integer)
        self._select = select(
            c.id, _time_us(self._dialect), flags, c.banner_id, *(c[s] for s in _SOURCES)
        )
        self._cols: ClickColumns | None = None
        self._mark = 0
        # id -> (when first missed, the first transaction id not yet started then)
        self._gaps: dict[int, tuple[float, int]] = {}
        self._floor = 0
        self._oldest = 0
        self._gone: set[int] = set()
        self._lock = asyncio.Lock()
        self._loader = BackgroundTask(self._load_quietly, name="click-copy-load")
        self.load_seconds: float | None = None
        self._retry_at = 0.0

    @property
    def ready(self) -> bool:
        return self._cols is not None

    @property
    def floor(self) -> datetime | None:
        """The oldest instant the copy covers; None until it is loaded."""
        return None if self._cols is None else _instant(self._floor)

    @property
    def nbytes(self) -> int:
        return 0 if self._cols is None else self._cols.nbytes

    @property
    def clicks(self) -> int:
        return 0 if self._cols is None else self._cols.n

    def stats(self) -> CopyStats:
        return CopyStats(
            loaded=self.ready,
            clicks=self.clicks,
            bytes=self.nbytes,
            gaps=len(self._gaps),
            floor=self.floor,
        )

    async def start(self) -> None:
        """Nothing: the copy loads at the first filtered read (``read``)."""

    async def stop(self) -> None:
        await self._loader.stop()

    async def read(
        self, conn: AsyncConnection, since: datetime, compute: Callable[[ClickColumns], T]
    ) -> T | None:
        """``compute`` on the columns caught up with ``conn``; None when the copy is not
        loaded yet (it starts loading) or does not cover clicks from ``since`` on."""
        if self._cols is None:
            if self._monotonic() >= self._retry_at:
                await self._loader.start()
            return None
        if us_of(since) < self._floor:  # the floor only rises: no need to catch up
            return None
        async with self._lock:
            await self._catch_up(conn)
            cols = self._cols
            if cols is None or us_of(since) < self._floor:
                return None
            # numpy releases the GIL in its loops: the event loop keeps serving meanwhile.
            # The lock is held until the thread is done with the columns, even when the
            # request is cancelled, so no catch-up changes them under it.
            work = asyncio.ensure_future(asyncio.to_thread(compute, cols))
            try:
                return await asyncio.shield(work)
            finally:
                if not work.done():
                    await asyncio.wait({work})

    async def _load_quietly(self) -> None:
        try:
            await self.load()
        except Exception:
            self._retry_at = self._monotonic() + RETRY_AFTER
            log.exception(
                "loading the clicks' in-memory copy failed; filtered reads use SQL, "
                "another try in %.0f s",
                RETRY_AFTER,
            )

    async def load(self) -> None:
        """Read the covered window's clicks into fresh columns, then take them in use."""
        started = time.perf_counter()
        cols = ClickColumns()
        # Two of the load's reads walk the window's index entries (millions): more than a
        # request's statement may take, so it may have an engine of its own.
        engine = self._load_engine() if self._load_engine is not None else self.engine
        try:
            await self._load(engine, cols, started)
        finally:
            if engine is not self.engine:
                await engine.dispose()

    async def _load(self, engine: AsyncEngine, cols: ClickColumns, started: float) -> None:
        c = clicks.c
        async with engine.connect() as conn:
            floor = await self._first_floor(conn)
            since = _instant(floor)
            first = await conn.scalar(select(func.min(c.id)).where(c.occurred_at >= since))
            last = int(await conn.scalar(select(func.max(c.id))) or 0)
            if first is None:
                mark = last
            else:
                mark = int(first) - 1
                # Room for the rows at once (ids bound them), not grown copy by copy.
                cols.reserve(min(last - mark, self._cap) + self._chunk)
            while True:
                # In id order (the primary key), not through ix_clicks_occurred and a sort
                # per page: SQLite's planner, without histograms, may pick the index.
                query = self._select.where(c.id > mark, Unindexed(c.occurred_at) >= since)
                rows = (await conn.execute(query.order_by(c.id).limit(self._chunk))).all()
                if rows:
                    await asyncio.to_thread(self._ingest, cols, rows, floor)
                    mark = int(rows[-1][0])
                if len(rows) < self._chunk:
                    break
            gaps: dict[int, tuple[float, int]] = {}
            if self._dialect == "postgresql" and mark:
                seen_at = (self._monotonic(), await _horizon(conn, "xmax"))
                low = max(0, mark - GAP_WINDOW)
                seen = set((await conn.scalars(select(c.id).where(c.id > low, c.id <= mark))).all())
                gaps = {i: seen_at for i in range(low + 1, mark + 1) if i not in seen}
            self._drop_deleted(cols, set((await conn.scalars(select(banners.c.id))).all()))
        self._cols, self._mark, self._gaps, self._floor = cols, mark, gaps, floor
        self._oldest = int(cols.us[: cols.n].min()) if cols.n else floor
        self.load_seconds = time.perf_counter() - started
        log.info(
            "clicks' in-memory copy: %d clicks from %s, %.1f MB, loaded in %.1f s",
            cols.n, since.isoformat(), cols.nbytes / 1e6, self.load_seconds,
        )  # fmt: skip

    def _retention_floor(self) -> int:
        return _next_midnight(us_of(self._clock()) - self._keep_us)

    async def _first_floor(self, conn: AsyncConnection) -> int:
        """The retention floor, or a later midnight if it leaves more than the cap."""
        floor = self._retention_floor()
        c = clicks.c
        beyond = await conn.scalar(
            select(_time_us(self._dialect))
            .where(c.occurred_at >= _instant(floor))
            .order_by(c.occurred_at.desc())
            .offset(self._cap)
            .limit(1)
        )
        if beyond is not None:  # the newest click the cap leaves out
            floor = max(floor, _next_midnight(int(beyond) + 1))
        return floor

    def _ingest(self, cols: ClickColumns, rows: Sequence[Sequence[Any]], floor: int) -> None:
        kept = [r for r in rows if r[1] >= floor]
        if not kept:
            return
        _, us, flags, *coded = zip(*kept, strict=True)
        placements = [None if p is None else str(p) for p in coded[-1]]
        cols.append(us, flags, dict(zip(CODED, (*coded[:-1], placements), strict=True)))
        self._oldest = min(self._oldest, min(us))

    async def _catch_up(self, conn: AsyncConnection) -> None:
        cols = self._cols
        assert cols is not None
        c = clicks.c
        while True:
            query = self._select.where(c.id > self._mark).order_by(c.id).limit(CATCH_UP)
            rows = (await conn.execute(query)).all()
            if not rows:
                break
            ids = [int(r[0]) for r in rows]
            skipped = self._dialect == "postgresql" and ids[-1] - self._mark > len(ids)
            if skipped and not self._note_gaps(ids, await _horizon(conn, "xmax")):
                self._cols = None  # too many to follow: start afresh
                await self._loader.start()
                return
            # Encoded on the event loop, so the rows and the mark change together (a
            # cancelled request cannot leave rows counted twice); chunks keep it short.
            self._ingest(cols, rows, self._floor)
            self._mark = int(rows[-1][0])
            if len(rows) < CATCH_UP:
                break
        if self._gaps:
            await self._ask_gaps(conn, cols)
        self._drop_deleted(cols, set((await conn.scalars(select(banners.c.id))).all()))
        self._trim(cols)

    def _note_gaps(self, ids: list[int], horizon: int) -> bool:
        """Remember the ids skipped before ``ids``; False if there are too many."""
        skipped = ids[-1] - self._mark - len(ids)
        if len(self._gaps) + skipped > GAP_LIMIT:
            log.warning("%d ids skipped at once; reloading the clicks' copy", skipped)
            return False
        seen_at = (self._monotonic(), horizon)
        present = set(ids)
        for i in range(self._mark + 1, ids[-1]):
            if i not in present:
                self._gaps[i] = seen_at
        return True

    async def _ask_gaps(self, conn: AsyncConnection, cols: ClickColumns) -> None:
        # Read before asking: a transaction that ended by then has its rows in the answer,
        # so an id still missing after it is given up only if its writer had ended.
        too_old = self._monotonic() - self._patience
        running = await _horizon(conn, "xmin")  # the oldest transaction still running
        wanted = sorted(self._gaps)
        for at in range(0, len(wanted), 1000):
            query = self._select.where(clicks.c.id.in_(wanted[at : at + 1000]))
            rows = (await conn.execute(query)).all()
            for r in rows:
                del self._gaps[int(r[0])]
            if rows:
                self._ingest(cols, rows, self._floor)
        self._gaps = {i: (t, h) for i, (t, h) in self._gaps.items() if t >= too_old or h > running}

    def _drop_deleted(self, cols: ClickColumns, alive: set[int]) -> None:
        seen = {b for b in cols.dictionaries["banner"].code if isinstance(b, int)}
        gone = seen - alive - self._gone
        if gone:
            cols.keep(~cols.banner_rows(gone))
            self._gone |= gone

    def _trim(self, cols: ClickColumns) -> None:
        """Raise the floor for retention and the cap, and drop the rows below it."""
        floor = max(self._floor, self._retention_floor())
        if cols.n > self._cap:
            keep = self._cap - self._cap // 8  # room, so that trims are rare
            newest_out = cols.n - keep - 1
            cut = int(np.partition(cols.us[: cols.n], newest_out)[newest_out])
            floor = max(floor, _next_midnight(cut + 1))
        self._floor = floor
        if self._oldest < floor:
            cols.keep(cols.us[: cols.n] >= floor)
            self._oldest = int(cols.us[: cols.n].min()) if cols.n else floor
