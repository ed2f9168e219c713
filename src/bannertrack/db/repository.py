"""``SqlRepository``: the ``Repository`` protocol on SQLAlchemy Core, SQLite or PostgreSQL.

Clicks are written with their rollups (``banner_totals``, ``click_minutes``) in one
transaction, so every statistic can be read from small tables and is exact:
"clicks in the last hour" sums the whole minutes inside the window from the rollup and
counts raw clicks only for the one partial minute at its start.

Repeat detection is part of that transaction: one upsert per (banner, visitor) of the
batch on ``visitor_clicks`` hands back the time of the visitor's last valid click as it
was before this batch. The upsert takes the row's lock, so two instances writing
clicks of one visitor at once are serialised by the database, and the second sees the
first's click. Rows are always locked in the same order (visitor rows by key, then
rollup rows by banner id), so concurrent batches cannot deadlock.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from msgspec import UNSET
from sqlalchemy import (
    BigInteger,
    Integer,
    Row,
    bindparam,
    case,
    cast,
    delete,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from bannertrack.db.engine import count_queries, create_engine
from bannertrack.db.errors import map_db_errors
from bannertrack.db.tables import (
    banner_totals,
    banners,
    click_minutes,
    clicks,
    impression_minutes,
    visitor_clicks,
    visitor_salts,
)
from bannertrack.models import (
    Banner,
    BannerCreate,
    BannerPage,
    BannerUpdate,
    BannerWithStats,
    ClickIn,
    ClickStats,
    CountKind,
    ExportedClick,
    ImpressionCount,
    Interval,
    RecordedClick,
    Series,
    SeriesPoint,
    TopBanner,
    TopBanners,
    click_through_rate,
)
from bannertrack.timeutil import INTERVAL_SECONDS, ceil_to, floor_to, from_epoch, utcnow

MAX_SERIES_POINTS = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def _banner(row: Row[Any]) -> Banner:
    return Banner(
        id=row.id,
        name=row.name,
        image_url=row.image_url,
        target_url=row.target_url,
        active=row.active,
        forward_query=row.forward_query,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlRepository:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Callable[[], datetime] = utcnow,
        dedup_window: float = 3600.0,
    ) -> None:
        self.engine = engine
        self.queries = count_queries(engine)
        self._clock = clock
        self._dialect = engine.dialect.name
        # Every instance on one database must use the same window, or they disagree.
        self._window_us = int(dedup_window * 1_000_000)

    @classmethod
    def from_url(
        cls, database_url: str, *, pool_size: int = 10, dedup_window: float = 3600.0
    ) -> SqlRepository:
        return cls(create_engine(database_url, pool_size=pool_size), dedup_window=dedup_window)

    def _insert(self, table: Any) -> Any:
        return pg_insert(table) if self._dialect == "postgresql" else sqlite_insert(table)

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        with map_db_errors():
            async with self.engine.begin() as conn:
                yield conn

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        with map_db_errors():
            async with self.engine.connect() as conn:
                yield conn

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
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(*banners.c)
                )
            ).one()
            await conn.execute(banner_totals.insert().values(banner_id=row.id, total_clicks=0))
        return _banner(row)

    async def get_banner(self, banner_id: int) -> Banner | None:
        async with self._read() as conn:
            return await self._get_banner(conn, banner_id)

    async def _get_banner(self, conn: AsyncConnection, banner_id: int) -> Banner | None:
        row = (await conn.execute(banners.select().where(banners.c.id == banner_id))).first()
        return None if row is None else _banner(row)

    async def list_banners(self, offset: int, limit: int) -> BannerPage:
        async with self._read() as conn:
            total = (await conn.execute(select(func.count()).select_from(banners))).scalar_one()
            rows = await conn.execute(
                banners.select().order_by(banners.c.id).offset(offset).limit(limit)
            )
            items = tuple(_banner(r) for r in rows)
        return BannerPage(items=items, total=total, offset=offset, limit=limit)

    async def update_banner(self, banner_id: int, data: BannerUpdate) -> Banner | None:
        values: dict[str, Any] = {
            name: getattr(data, name)
            for name in data.__struct_fields__
            if getattr(data, name) is not UNSET
        }
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
        return None if row is None else _banner(row)

    async def delete_banner(self, banner_id: int) -> bool:
        async with self._tx() as conn:
            result = await conn.execute(banners.delete().where(banners.c.id == banner_id))
        return bool(result.rowcount)

    # clicks --------------------------------------------------------------------------

    async def record_clicks(self, batch: Sequence[ClickIn]) -> list[RecordedClick | None]:
        if not batch:
            return []
        wanted = sorted({c.banner_id for c in batch})
        async with self._tx() as conn:
            exists = select(banners.c.id).where(banners.c.id.in_(wanted)).order_by(banners.c.id)
            if self._dialect == "postgresql":
                # A concurrent DELETE of the banner waits for this batch instead of
                # racing it into a foreign-key error that would fail the whole batch.
                exists = exists.with_for_update(key_share=True)
            present = set((await conn.execute(exists)).scalars())
            keep = [c for c in batch if c.banner_id in present]
            ids: list[int] = []
            repeats: list[bool] = []
            if keep:
                repeats = await self._repeats(conn, keep)
                ids = await self._insert_clicks(conn, keep, repeats)
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

    async def _repeats(self, conn: AsyncConnection, batch: Sequence[ClickIn]) -> list[bool]:
        """Which clicks of the batch are repeats; updates ``visitor_clicks`` to match.

        A click is a repeat when its visitor's last valid click on the same banner is
        less than the window away. Bots are never repeats (their flag says enough) and do
        not open a window; clicks without a visitor key (no address) cannot be repeats.
        """
        window = self._window_us
        flags = [False] * len(batch)
        if window <= 0:
            return flags
        groups: dict[tuple[int, str], list[int]] = {}
        for i, c in enumerate(batch):
            if not c.bot and c.visitor is not None:
                groups.setdefault((c.banner_id, c.visitor), []).append(i)
        if not groups:
            return flags
        keys = sorted(groups)  # the lock order
        first = {k: _micros(batch[groups[k][0]].occurred_at) for k in keys}
        ins = self._insert(visitor_clicks)
        v = visitor_clicks.c
        upsert = ins.on_conflict_do_update(
            index_elements=[v.banner_id, v.visitor],
            set_={
                "prev_us": v.counted_us,
                # The window moves only with a valid click: one at least a window later.
                "counted_us": case(
                    (
                        ins.excluded.counted_us >= v.counted_us + literal_column(str(window)),
                        ins.excluded.counted_us,
                    ),
                    else_=v.counted_us,
                ),
            },
        ).returning(v.banner_id, v.visitor, v.prev_us)
        rows = await conn.execute(
            upsert,
            [{"banner_id": b, "visitor": s, "counted_us": first[(b, s)]} for b, s in keys],
        )
        before: dict[tuple[int, str], int | None] = {
            (int(r.banner_id), r.visitor): r.prev_us for r in rows
        }

        def step(state: int | None, t: int) -> tuple[bool, int]:
            # The same rule as the upsert above, for the batch's later clicks.
            if state is None:
                return False, t
            if abs(t - state) < window:
                return True, state
            return False, t if t > state else state

        moved = []
        for key in keys:
            state = before[key]
            stored: int | None = None
            for i in groups[key]:
                flags[i], state = step(state, _micros(batch[i].occurred_at))
                if stored is None:
                    stored = state  # what the upsert wrote
            if state != stored:
                moved.append({"b_id": key[0], "v_key": key[1], "at": state})
        if moved:  # a visitor clicked again more than a window later within one batch
            await conn.execute(
                update(visitor_clicks)
                .where(v.banner_id == bindparam("b_id"), v.visitor == bindparam("v_key"))
                .values(counted_us=bindparam("at")),
                moved,
            )
        return flags

    async def _insert_clicks(
        self, conn: AsyncConnection, batch: Sequence[ClickIn], repeats: Sequence[bool]
    ) -> list[int]:
        rows = [
            {
                "banner_id": c.banner_id,
                "occurred_at": c.occurred_at,
                "user_agent": c.user_agent,
                "referrer": c.referrer,
                "visitor": c.visitor,
                "ip_prefix": c.ip_prefix,
                "bot": c.bot,
                "bot_reason": c.bot_reason,
                "repeat": repeat,
            }
            for c, repeat in zip(batch, repeats, strict=True)
        ]
        if self._dialect == "sqlite":
            # SQLite has one writer at a time and hands out AUTOINCREMENT ids in VALUES
            # order, but RETURNING's row order is unspecified: sorting restores the
            # batch's order. Asking SQLAlchemy to keep it would insert row by row.
            result = await conn.execute(clicks.insert().returning(clicks.c.id), rows)
            ids = sorted(result.scalars())
        else:
            result = await conn.execute(
                clicks.insert().returning(clicks.c.id, sort_by_parameter_order=True), rows
            )
            ids = list(result.scalars())

        per_banner: dict[int, _Tally] = {}
        minutes: dict[tuple[int, datetime], _Tally] = {}
        for c, repeat in zip(batch, repeats, strict=True):
            per_banner.setdefault(c.banner_id, _Tally()).add(c, repeat)
            minutes.setdefault((c.banner_id, floor_to(c.occurred_at, 60)), _Tally()).add(c, repeat)
        # Sorted keys: two writers always lock rollup rows in the same order (no deadlock).
        totals = [
            {"b_id": b, "lo": tally.lo, "hi": tally.hi, **tally.counts()}
            for b, tally in sorted(per_banner.items())
        ]
        t = banner_totals.c
        await conn.execute(
            update(banner_totals)
            .where(t.banner_id == bindparam("b_id"))
            .values(
                total_clicks=t.total_clicks + bindparam("n"),
                valid_clicks=t.valid_clicks + bindparam("valid"),
                bot_clicks=t.bot_clicks + bindparam("bots"),
                repeat_clicks=t.repeat_clicks + bindparam("repeats"),
                first_click_at=case(
                    (t.first_click_at.is_(None), bindparam("lo")),
                    (t.first_click_at > bindparam("lo"), bindparam("lo")),
                    else_=t.first_click_at,
                ),
                last_click_at=case(
                    (t.last_click_at.is_(None), bindparam("hi")),
                    (t.last_click_at < bindparam("hi"), bindparam("hi")),
                    else_=t.last_click_at,
                ),
            ),
            totals,
        )
        await conn.execute(
            self._minute_upsert(),
            [
                {
                    "banner_id": b,
                    "minute": m,
                    "clicks": tally.n,
                    "valid_clicks": tally.valid,
                    "bot_clicks": tally.bots,
                    "repeat_clicks": tally.repeats,
                }
                for (b, m), tally in sorted(minutes.items())
            ],
        )
        return ids

    def _minute_upsert(self) -> Any:
        ins = self._insert(click_minutes)
        m = click_minutes.c
        return ins.on_conflict_do_update(
            index_elements=[m.banner_id, m.minute],
            set_={
                name: getattr(m, name) + getattr(ins.excluded, name)
                for name in ("clicks", "valid_clicks", "bot_clicks", "repeat_clicks")
            },
        )

    # impressions ---------------------------------------------------------------------

    async def record_impressions(self, counts: Sequence[ImpressionCount]) -> None:
        merged: Counter[tuple[int, datetime]] = Counter()
        for c in counts:
            if c.count > 0:
                merged[(c.banner_id, floor_to(c.minute, 60))] += c.count
        if not merged:
            return
        wanted = sorted({b for b, _ in merged})
        async with self._tx() as conn:
            exists = select(banners.c.id).where(banners.c.id.in_(wanted)).order_by(banners.c.id)
            if self._dialect == "postgresql":
                exists = exists.with_for_update(key_share=True)
            present = set((await conn.execute(exists)).scalars())
            rows = [(k, n) for k, n in sorted(merged.items()) if k[0] in present]
            if not rows:
                return
            ins = self._insert(impression_minutes)
            im = impression_minutes.c
            await conn.execute(
                ins.on_conflict_do_update(
                    index_elements=[im.banner_id, im.minute],
                    set_={"impressions": im.impressions + ins.excluded.impressions},
                ),
                [{"banner_id": b, "minute": m, "impressions": n} for (b, m), n in rows],
            )
            per_banner: Counter[int] = Counter()
            for (b, _), n in rows:
                per_banner[b] += n
            t = banner_totals.c
            await conn.execute(
                update(banner_totals)
                .where(t.banner_id == bindparam("b_id"))
                .values(impressions=t.impressions + bindparam("n")),
                [{"b_id": b, "n": n} for b, n in sorted(per_banner.items())],
            )

    async def impressions(self, banner_ids: Sequence[int]) -> dict[int, int]:
        t = banner_totals.c
        async with self._read() as conn:
            rows = await conn.execute(
                select(t.banner_id, t.impressions).where(t.banner_id.in_(banner_ids))
            )
            return {int(b): int(n) for b, n in rows}

    # visitor salts -------------------------------------------------------------------

    async def visitor_salt(self, day: date) -> bytes:
        """The salt of ``day``, the same for every instance; older salts are deleted.

        The first instance to ask creates it; a concurrent insert loses quietly
        (ON CONFLICT DO NOTHING) and everyone reads the row that won.
        """
        s = visitor_salts.c
        async with self._tx() as conn:
            await conn.execute(
                self._insert(visitor_salts)
                .values(day=day, salt=secrets.token_bytes(32))
                .on_conflict_do_nothing(index_elements=[s.day])
            )
            salt = (await conn.execute(select(s.salt).where(s.day == day))).scalar_one()
            await conn.execute(delete(visitor_salts).where(s.day < day))
        return bytes(salt)

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
        """Forget at most ``limit`` visitors whose window ended before ``older_than``."""
        v = visitor_clicks.c
        doomed = (
            select(v.banner_id, v.visitor).where(v.counted_us < _micros(older_than)).limit(limit)
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
                c.ip_prefix,
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
                    ip_prefix=r.ip_prefix,
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

    # statistics ----------------------------------------------------------------------

    async def click_stats(self, banner_id: int) -> ClickStats | None:
        async with self._read() as conn:
            return await self._click_stats(conn, banner_id)

    async def _click_stats(self, conn: AsyncConnection, banner_id: int) -> ClickStats | None:
        now = self._clock()
        hour_ago, day_ago = now - timedelta(hours=1), now - timedelta(days=1)
        hour_edge, day_edge = ceil_to(hour_ago, 60), ceil_to(day_ago, 60)
        m, c = click_minutes.c, clicks.c

        def whole_minutes(since: datetime) -> ColumnElement[Any]:
            return (
                select(func.coalesce(func.sum(m.clicks), 0))
                .where(m.banner_id == banner_id, m.minute >= since)
                .scalar_subquery()
            )

        def partial_minute(lo: datetime, hi: datetime) -> ColumnElement[Any]:
            if lo == hi:
                return literal(0)
            return (
                select(func.count())
                .select_from(clicks)
                .where(c.banner_id == banner_id, c.occurred_at >= lo, c.occurred_at < hi)
                .scalar_subquery()
            )

        t = banner_totals.c
        row = (
            await conn.execute(
                select(
                    t.total_clicks,
                    t.first_click_at,
                    t.last_click_at,
                    whole_minutes(hour_edge) + partial_minute(hour_ago, hour_edge),
                    whole_minutes(day_edge) + partial_minute(day_ago, day_edge),
                    t.valid_clicks,
                    t.bot_clicks,
                    t.repeat_clicks,
                    t.impressions,
                ).where(t.banner_id == banner_id)
            )
        ).first()
        if row is None:
            return None
        return ClickStats(
            banner_id=banner_id,
            total_clicks=int(row[0]),
            clicks_last_hour=int(row[3]),
            clicks_last_24h=int(row[4]),
            first_click_at=row[1],
            last_click_at=row[2],
            valid_clicks=int(row[5]),
            bot_clicks=int(row[6]),
            repeat_clicks=int(row[7]),
            impressions=int(row[8]),
            ctr=click_through_rate(int(row[5]), int(row[8])),
        )

    async def banner_with_stats(self, banner_id: int) -> BannerWithStats | None:
        async with self._read() as conn:
            banner = await self._get_banner(conn, banner_id)
            if banner is None:
                return None
            stats = await self._click_stats(conn, banner_id)
        if stats is None:  # deleted between the two reads
            return None
        return BannerWithStats(banner=banner, stats=stats)

    async def top_banners(self, limit: int, count: CountKind = "total") -> TopBanners:
        t = banner_totals.c
        counted = t.valid_clicks if count == "valid" else t.total_clicks
        async with self._read() as conn:
            rows = await conn.execute(
                select(banners, counted.label("counted"))
                .join(banner_totals, t.banner_id == banners.c.id)
                .order_by(counted.desc(), t.banner_id)
                .limit(limit)
            )
            items = tuple(TopBanner(banner=_banner(r), clicks=int(r.counted)) for r in rows)
        return TopBanners(limit=limit, items=items)

    async def click_series(
        self,
        banner_id: int,
        start: datetime,
        end: datetime,
        interval: Interval,
        count: CountKind = "total",
    ) -> Series | None:
        width = INTERVAL_SECONDS[interval]
        first, last = floor_to(start, width), floor_to(end, width)
        m = click_minutes.c
        counted = m.valid_clicks if count == "valid" else m.clicks
        bucket = self._epoch_bucket(m.minute, width)
        async with self._read() as conn:
            if await self._get_banner(conn, banner_id) is None:
                return None
            rows = await conn.execute(
                select(bucket, func.sum(counted))
                .where(
                    m.banner_id == banner_id,
                    m.minute >= first,
                    m.minute < last + timedelta(seconds=width),
                )
                .group_by(bucket)
            )
            counts = {int(b) * width: int(n) for b, n in rows}
        first_epoch = int(first.timestamp())
        n_points = (int(last.timestamp()) - first_epoch) // width + 1
        points = tuple(
            SeriesPoint(ts=from_epoch(s), clicks=counts.get(s, 0))
            for s in range(first_epoch, first_epoch + n_points * width, width)
        )
        return Series(banner_id=banner_id, from_=start, to=end, interval=interval, points=points)

    def _epoch_bucket(self, col: Any, width: int) -> ColumnElement[Any]:
        if self._dialect == "postgresql":
            return cast(func.extract("epoch", col), BigInteger) // width
        # SQLite stores naive UTC text; strftime('%s') reads it as UTC seconds.
        return cast(func.strftime("%s", col), Integer) // width

    # health --------------------------------------------------------------------------

    async def ping(self) -> None:
        async with self._read() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()


class _Tally:
    """Counts of a group of clicks (one banner, or one banner-minute) for the rollups."""

    __slots__ = ("bots", "hi", "lo", "n", "repeats", "valid")

    def __init__(self) -> None:
        self.n = self.valid = self.bots = self.repeats = 0
        self.lo: datetime | None = None
        self.hi: datetime | None = None

    def add(self, click: ClickIn, repeat: bool) -> None:
        self.n += 1
        if click.bot:
            self.bots += 1
        elif repeat:
            self.repeats += 1
        else:
            self.valid += 1
        t = click.occurred_at
        self.lo = t if self.lo is None or t < self.lo else self.lo
        self.hi = t if self.hi is None or t > self.hi else self.hi

    def counts(self) -> dict[str, int]:
        return {"n": self.n, "valid": self.valid, "bots": self.bots, "repeats": self.repeats}


def series_points(start: datetime, end: datetime, interval: Interval) -> int:
    """How many points a series would have, so the API can refuse absurd ranges early."""
    width = INTERVAL_SECONDS[interval]
    return int((floor_to(end, width) - floor_to(start, width)).total_seconds()) // width + 1
