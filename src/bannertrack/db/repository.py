"""``SqlRepository``: the ``Repository`` protocol on SQLAlchemy Core, SQLite or PostgreSQL.

Clicks are written with their rollups (``banner_totals``, ``click_minutes``) in one
transaction, so every statistic can be read from small tables and is exact:
"clicks in the last hour" sums the whole minutes inside the window from the rollup and
counts raw clicks only for the one partial minute at its start.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from msgspec import UNSET
from sqlalchemy import (
    BigInteger,
    Integer,
    Row,
    bindparam,
    case,
    cast,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from bannertrack.db.engine import count_queries, create_engine
from bannertrack.db.errors import map_db_errors
from bannertrack.db.tables import banner_totals, banners, click_minutes, clicks
from bannertrack.models import (
    Banner,
    BannerCreate,
    BannerPage,
    BannerUpdate,
    BannerWithStats,
    ClickIn,
    ClickStats,
    Interval,
    RecordedClick,
    Series,
    SeriesPoint,
    TopBanner,
    TopBanners,
)
from bannertrack.timeutil import INTERVAL_SECONDS, ceil_to, floor_to, from_epoch, utcnow

MAX_SERIES_POINTS = 10_000


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
    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.queries = count_queries(engine)
        self._clock = clock
        self._dialect = engine.dialect.name

    @classmethod
    def from_url(cls, database_url: str, *, pool_size: int = 10) -> SqlRepository:
        return cls(create_engine(database_url, pool_size=pool_size))

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
            if keep:
                ids = await self._insert_clicks(conn, keep)
        out: list[RecordedClick | None] = []
        it = iter(ids)
        for c in batch:
            if c.banner_id in present:
                out.append(
                    RecordedClick(id=next(it), banner_id=c.banner_id, occurred_at=c.occurred_at)
                )
            else:
                out.append(None)
        return out

    async def _insert_clicks(self, conn: AsyncConnection, batch: Sequence[ClickIn]) -> list[int]:
        rows = [
            {
                "banner_id": c.banner_id,
                "occurred_at": c.occurred_at,
                "user_agent": c.user_agent,
                "referrer": c.referrer,
                "visitor": c.visitor,
                "ip_prefix": c.ip_prefix,
            }
            for c in batch
        ]
        result = await conn.execute(
            clicks.insert().returning(clicks.c.id, sort_by_parameter_order=True), rows
        )
        ids = list(result.scalars())

        per_banner: dict[int, list[datetime]] = {}
        for c in batch:
            per_banner.setdefault(c.banner_id, []).append(c.occurred_at)
        # Sorted keys: two writers always lock rollup rows in the same order (no deadlock).
        totals = [
            {"b_id": b, "n": len(ts), "lo": min(ts), "hi": max(ts)}
            for b, ts in sorted(per_banner.items())
        ]
        t = banner_totals.c
        await conn.execute(
            update(banner_totals)
            .where(t.banner_id == bindparam("b_id"))
            .values(
                total_clicks=t.total_clicks + bindparam("n"),
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
        minutes = Counter((c.banner_id, floor_to(c.occurred_at, 60)) for c in batch)
        await conn.execute(
            self._minute_upsert(),
            [{"banner_id": b, "minute": m, "clicks": n} for (b, m), n in sorted(minutes.items())],
        )
        return ids

    def _minute_upsert(self) -> Any:
        ins = (
            pg_insert(click_minutes)
            if self._dialect == "postgresql"
            else sqlite_insert(click_minutes)
        )
        return ins.on_conflict_do_update(
            index_elements=[click_minutes.c.banner_id, click_minutes.c.minute],
            set_={"clicks": click_minutes.c.clicks + ins.excluded.clicks},
        )

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

    async def top_banners(self, limit: int) -> TopBanners:
        t = banner_totals.c
        async with self._read() as conn:
            rows = await conn.execute(
                select(banners, t.total_clicks)
                .join(banner_totals, t.banner_id == banners.c.id)
                .order_by(t.total_clicks.desc(), t.banner_id)
                .limit(limit)
            )
            items = tuple(TopBanner(banner=_banner(r), clicks=int(r.total_clicks)) for r in rows)
        return TopBanners(limit=limit, items=items)

    async def click_series(
        self, banner_id: int, start: datetime, end: datetime, interval: Interval
    ) -> Series | None:
        width = INTERVAL_SECONDS[interval]
        first, last = floor_to(start, width), floor_to(end, width)
        m = click_minutes.c
        bucket = self._epoch_bucket(m.minute, width)
        async with self._read() as conn:
            if await self._get_banner(conn, banner_id) is None:
                return None
            rows = await conn.execute(
                select(bucket, func.sum(m.clicks))
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


def series_points(start: datetime, end: datetime, interval: Interval) -> int:
    """How many points a series would have, so the API can refuse absurd ranges early."""
    width = INTERVAL_SECONDS[interval]
    return int((floor_to(end, width) - floor_to(start, width)).total_seconds()) // width + 1
