"""SQLAlchemy Core tables: the schema as the code sees it.

The migrations in ``db/migrations`` create exactly this; a test compares the two.

- ``clicks`` keeps every raw click for audit and export. The raw IP is never a column:
  only the daily-salted ``visitor`` hash and the coarse ``ip_prefix``.
- ``banner_totals`` (one row per banner, created with the banner) and ``click_minutes``
  (per-minute counts) are rollups kept in the click's own transaction, so statistics,
  top banners and series read small tables instead of scanning raw clicks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time zones; storing naive UTC there and re-attaching UTC on the way
    out keeps comparisons and the JSON identical to PostgreSQL's ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


# BigInteger ids on PostgreSQL, but SQLite only auto-increments a column typed INTEGER.
IdType = BigInteger().with_variant(Integer(), "sqlite")

banners = Table(
    "banners",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("image_url", String(2048), nullable=False),
    Column("target_url", String(2048), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("forward_query", Boolean, nullable=False, default=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # Without AUTOINCREMENT SQLite reuses the id of a deleted last row, and a cached
    # "banner 7 does not exist" could then shadow a new banner 7.
    sqlite_autoincrement=True,
)

clicks = Table(
    "clicks",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column(
        "banner_id",
        IdType,
        ForeignKey("banners.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("user_agent", Text, nullable=True),
    Column("referrer", Text, nullable=True),
    Column("visitor", String(64), nullable=True),
    Column("ip_prefix", String(64), nullable=True),
    Index("ix_clicks_banner_occurred", "banner_id", "occurred_at"),
    sqlite_autoincrement=True,
)

banner_totals = Table(
    "banner_totals",
    metadata,
    Column(
        "banner_id",
        IdType,
        ForeignKey("banners.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("total_clicks", BigInteger, nullable=False, default=0),
    Column("first_click_at", UtcDateTime, nullable=True),
    Column("last_click_at", UtcDateTime, nullable=True),
)
# Top banners reads this index in order: most clicks first, lower id first on ties.
Index("ix_banner_totals_rank", banner_totals.c.total_clicks.desc(), banner_totals.c.banner_id)

click_minutes = Table(
    "click_minutes",
    metadata,
    Column(
        "banner_id",
        IdType,
        ForeignKey("banners.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("minute", UtcDateTime, primary_key=True),
    Column("clicks", BigInteger, nullable=False),
)
