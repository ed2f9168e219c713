"""``SqlPlacements``: placements, their weighted banners and their counts, in SQL.

``SqlRepository`` derives from it (the ``PlacementStore`` protocol). The counts live in
``placement_minutes``, one row per (placement, banner, minute) holding impressions,
clicks and valid clicks; ``placement_rollup`` adds to it inside the impression write's
and the click batch's own transactions (``SqlRepository``), so the statistics read here
are exact: what the rollup says was committed with what it counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from msgspec import UNSET
from sqlalchemy import Row, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bannertrack.conversions.values import revenue_text
from bannertrack.db.conversion_queries import placement_conversions
from bannertrack.db.maintenance import SqlMaintenance
from bannertrack.db.sql import banner_from_row, insert_for
from bannertrack.db.tables import banners, placement_banners, placement_minutes, placements
from bannertrack.errors import InvalidInputError
from bannertrack.models import (
    Candidate,
    Candidates,
    Placement,
    PlacementBanner,
    PlacementBanners,
    PlacementBannerStats,
    PlacementCreate,
    PlacementPage,
    PlacementStats,
    PlacementUpdate,
    click_through_rate,
    conversion_rate,
)
from bannertrack.timeutil import floor_to

# (placement, banner, minute) -> [impressions, clicks, valid clicks]
Rollup = dict[tuple[int, int, datetime], list[int]]


def _placement(row: Row[Any]) -> Placement:
    return Placement(
        id=row.id,
        name=row.name,
        width=row.width,
        height=row.height,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def add_placement_rollup(conn: AsyncConnection, dialect: str, rollup: Rollup) -> None:
    """Add ``rollup`` to ``placement_minutes`` in the caller's transaction.

    Rows are upserted in key order, the lock order every writer keeps (no deadlock).
    """
    if not rollup:
        return
    ins = insert_for(dialect, placement_minutes)
    pm = placement_minutes.c
    await conn.execute(
        ins.on_conflict_do_update(
            index_elements=[pm.placement_id, pm.banner_id, pm.minute],
            set_={
                "impressions": pm.impressions + ins.excluded.impressions,
                "clicks": pm.clicks + ins.excluded.clicks,
                "valid_clicks": pm.valid_clicks + ins.excluded.valid_clicks,
            },
        ),
        [
            {
                "placement_id": p,
                "banner_id": b,
                "minute": m,
                "impressions": n[0],
                "clicks": n[1],
                "valid_clicks": n[2],
            }
            for (p, b, m), n in sorted(rollup.items())
        ],
    )


def impression_rollup(counts: Iterable[tuple[int | None, int, datetime, int]]) -> Rollup:
    merged: Counter[tuple[int, int, datetime]] = Counter()
    for placement_id, banner_id, minute, n in counts:
        if placement_id is not None and n > 0:
            merged[(placement_id, banner_id, floor_to(minute, 60))] += n
    return {key: [n, 0, 0] for key, n in merged.items()}


class SqlPlacements(SqlMaintenance):
    _clock: Callable[[], datetime]  # set by SqlRepository

    async def create_placement(self, data: PlacementCreate) -> Placement:
        now = self._clock()
        async with self._tx() as conn:
            row = (
                await conn.execute(
                    placements.insert()
                    .values(
                        name=data.name,
                        width=data.width,
                        height=data.height,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(*placements.c)
                )
            ).one()
        return _placement(row)

    async def get_placement(self, placement_id: int) -> Placement | None:
        async with self._read() as conn:
            row = (
                await conn.execute(placements.select().where(placements.c.id == placement_id))
            ).first()
        return None if row is None else _placement(row)

    async def list_placements(self, offset: int, limit: int) -> PlacementPage:
        async with self._read() as conn:
            total = (await conn.execute(select(func.count()).select_from(placements))).scalar_one()
            rows = await conn.execute(
                placements.select().order_by(placements.c.id).offset(offset).limit(limit)
            )
            items = tuple(_placement(r) for r in rows)
        return PlacementPage(items=items, total=total, offset=offset, limit=limit)

    async def update_placement(self, placement_id: int, data: PlacementUpdate) -> Placement | None:
        values: dict[str, Any] = {
            name: getattr(data, name)
            for name in data.__struct_fields__
            if getattr(data, name) is not UNSET
        }
        values["updated_at"] = self._clock()
        async with self._tx() as conn:
            row = (
                await conn.execute(
                    placements.update()
                    .where(placements.c.id == placement_id)
                    .values(**values)
                    .returning(*placements.c)
                )
            ).first()
        return None if row is None else _placement(row)

    async def delete_placement(self, placement_id: int) -> bool:
        async with self._tx() as conn:
            # placement_banners goes by its cascading key; the rollup has none.
            await conn.execute(
                placement_banners.delete().where(placement_banners.c.placement_id == placement_id)
            )
            result = await conn.execute(placements.delete().where(placements.c.id == placement_id))
            await conn.execute(
                placement_minutes.delete().where(placement_minutes.c.placement_id == placement_id)
            )
        return bool(result.rowcount)

    async def _banner_list(self, conn: AsyncConnection, placement_id: int) -> PlacementBanners:
        pb = placement_banners.c
        rows = await conn.execute(
            select(pb.banner_id, pb.weight)
            .where(pb.placement_id == placement_id)
            .order_by(pb.banner_id)
        )
        return PlacementBanners(
            placement_id=placement_id,
            banners=tuple(PlacementBanner(banner_id=b, weight=w) for b, w in rows),
        )

    async def _exists(self, conn: AsyncConnection, placement_id: int, lock: bool = False) -> bool:
        query = select(placements.c.id).where(placements.c.id == placement_id)
        if lock and self._dialect == "postgresql":
            query = query.with_for_update()
        return (await conn.execute(query)).first() is not None

    async def placement_banners(self, placement_id: int) -> PlacementBanners | None:
        async with self._read() as conn:
            if not await self._exists(conn, placement_id):
                return None
            return await self._banner_list(conn, placement_id)

    async def set_placement_banners(
        self, placement_id: int, wanted: Sequence[PlacementBanner]
    ) -> PlacementBanners | None:
        ids = [b.banner_id for b in wanted]
        twice = sorted({b for b in ids if ids.count(b) > 1})
        if twice:
            raise InvalidInputError(f"banners: banner_id given more than once: {twice[:5]}")
        async with self._tx() as conn:
            if self._dialect == "sqlite":  # the write lock first, as the click batch does
                await conn.execute(text("UPDATE placements SET id = id WHERE 0"))
            if not await self._exists(conn, placement_id, lock=True):
                return None
            if ids:
                query = select(banners.c.id).where(banners.c.id.in_(ids)).order_by(banners.c.id)
                if self._dialect == "postgresql":  # a concurrent delete waits for this one
                    query = query.with_for_update(read=True, key_share=True)
                found = set((await conn.execute(query)).scalars().all())
                unknown = sorted(set(ids) - found)
                if unknown:
                    raise InvalidInputError(f"banners: no banner with id {unknown[:5]}")
            pb = placement_banners.c
            await conn.execute(placement_banners.delete().where(pb.placement_id == placement_id))
            if wanted:
                await conn.execute(
                    placement_banners.insert(),
                    [
                        {"placement_id": placement_id, "banner_id": b.banner_id, "weight": b.weight}
                        for b in sorted(wanted, key=lambda b: b.banner_id)
                    ],
                )
            await conn.execute(
                placements.update()
                .where(placements.c.id == placement_id)
                .values(updated_at=self._clock())
            )
            return await self._banner_list(conn, placement_id)

    async def candidates(self, placement_id: int) -> Candidates | None:
        async with self._read() as conn:
            row = (
                await conn.execute(placements.select().where(placements.c.id == placement_id))
            ).first()
            if row is None:
                return None
            pb = placement_banners.c
            rows = await conn.execute(
                select(banners, pb.weight)
                .join(placement_banners, pb.banner_id == banners.c.id)
                .where(pb.placement_id == placement_id, banners.c.active.is_(True))
                .order_by(banners.c.id)
            )
            found = tuple(Candidate(banner=banner_from_row(r), weight=r.weight) for r in rows)
        return Candidates(placement=_placement(row), banners=found)

    async def placement_stats(
        self, placement_id: int, start: datetime, end: datetime
    ) -> PlacementStats | None:
        pm = placement_minutes.c
        async with self._read() as conn:
            if not await self._exists(conn, placement_id):
                return None
            rows = await conn.execute(
                select(
                    pm.banner_id,
                    func.sum(pm.impressions),
                    func.sum(pm.clicks),
                    func.sum(pm.valid_clicks),
                )
                .where(
                    pm.placement_id == placement_id,
                    pm.minute >= floor_to(start, 60),
                    pm.minute < end,
                )
                .group_by(pm.banner_id)
                .order_by(pm.banner_id)
            )
            shown = {int(b): (int(i), int(c), int(v)) for b, i, c, v in rows}
            converted = await placement_conversions(conn, placement_id, start, end)
        per = []
        for banner_id in sorted(shown.keys() | converted.keys()):
            i, c, v = shown.get(banner_id, (0, 0, 0))
            n, revenue = converted.get(banner_id, (0, []))
            per.append(
                PlacementBannerStats(
                    banner_id=banner_id,
                    impressions=i,
                    clicks=c,
                    valid_clicks=v,
                    ctr=click_through_rate(v, i),
                    conversions=n,
                    conversion_rate=conversion_rate(n, v),
                    revenue=revenue_text(revenue),
                )
            )
        impressions = sum(b.impressions for b in per)
        valid = sum(b.valid_clicks for b in per)
        conversions = sum(b.conversions for b in per)
        return PlacementStats(
            placement_id=placement_id,
            from_=start,
            to=end,
            impressions=impressions,
            clicks=sum(b.clicks for b in per),
            valid_clicks=valid,
            ctr=click_through_rate(valid, impressions),
            banners=tuple(per),
            conversions=conversions,
            conversion_rate=conversion_rate(conversions, valid),
            revenue=revenue_text(r for _, revenue in converted.values() for r in revenue),
        )
