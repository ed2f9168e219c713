"""Small SQL helpers shared by the modules of the database adapter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, Subquery, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from bannertrack.db.tables import banners
from bannertrack.models import Banner, TopBanner, TopBanners

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)  # built once: micros() runs per click


def insert_for(dialect: str, table: Any) -> Any:
    """An INSERT that knows ON CONFLICT on this dialect."""
    return pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)


def micros(value: datetime) -> int:
    return (value - _EPOCH) // _MICROSECOND


def codes_column(codes: Sequence[str] | None) -> str | None:
    """Targeting codes as ``banners.countries``/``devices`` store them: sorted, joined by
    commas; ``None`` (no limit) for none."""
    return ",".join(sorted(set(codes))) if codes else None


def codes_of(stored: str | None) -> tuple[str, ...]:
    return tuple(stored.split(",")) if stored else ()


def banner_from_row(row: Row[Any]) -> Banner:
    return Banner(
        id=row.id,
        name=row.name,
        image_url=row.image_url,
        target_url=row.target_url,
        active=row.active,
        forward_query=row.forward_query,
        created_at=row.created_at,
        updated_at=row.updated_at,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        countries=codes_of(row.countries),
        devices=codes_of(row.devices),
        cap_per_day=row.cap_per_day,
        click_id_param=row.click_id_param,
    )


async def ranked_banners(conn: AsyncConnection, per_banner: Subquery, limit: int) -> TopBanners:
    """The banners of ``per_banner`` (``banner_id``, ``n``) with ``n`` above 0, most first
    (ties by id): the top banners from rollups and from raw clicks alike."""
    n = per_banner.c.n
    rows = await conn.execute(
        select(banners, n)
        .join(per_banner, per_banner.c.banner_id == banners.c.id)
        .where(n > 0)
        .order_by(n.desc(), banners.c.id)
        .limit(limit)
    )
    items = tuple(TopBanner(banner=banner_from_row(r), clicks=int(r.n)) for r in rows)
    return TopBanners(limit=limit, items=items)
