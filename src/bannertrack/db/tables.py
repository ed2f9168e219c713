"""SQLAlchemy Core tables: the schema as the code sees it.

The migrations in ``db/migrations`` create exactly this; a test compares the two.

- ``clicks`` keeps every raw click for audit and export. The raw IP is never a column:
  only the daily-salted ``visitor`` hash, and nothing that narrows a guess of the
  address (no prefix: docs/counting.md, Privacy).
- ``banner_totals`` (one row per banner, created with the banner) and ``click_minutes``
  (per-minute counts) are rollups kept in the click's own transaction, so statistics,
  top banners and series read small tables instead of scanning raw clicks. They count
  every click and, apart, the valid, bot and repeat ones (total = valid + bot + repeat).
- ``impression_minutes`` holds impressions as per-minute counts (never rows), with
  their running total on ``banner_totals``.
- ``click_breakdowns`` counts clicks per banner, UTC day, dimension (referrer host,
  utm_*, country, and device, browser and OS together as one ``agent`` value) and value,
  with a bounded number of values.
- ``visitor_clicks`` remembers, per banner and visitor key, when the last valid click
  was, so repeat detection is one atomic upsert shared by every instance; rows older
  than the dedup window are purged in the background.
- ``visitor_salts`` holds the salt of the current UTC day *sealed* under a key that is
  never stored in the database (``salt_key.py``), shared by every instance so that they
  all compute the same visitor key; ``key_check`` tells an instance with another key
  apart. Older salts are deleted.

- ``placements`` (Revive's zones) and ``placement_banners`` (their banners with weights);
  ``placement_minutes`` counts a placement's impressions and clicks per banner and minute,
  kept in the impression write's and the click batch's own transactions.

``banner_totals``, ``impression_minutes`` and ``placement_banners`` refer to ``banners``
with a cascading foreign key. The tables a click batch inserts rows into (``clicks``,
``visitor_clicks``, ``click_minutes``, ``click_breakdowns``, ``placement_minutes``) have
none: on PostgreSQL a foreign key checks
every inserted row with a query of its own and a lock on the banner row, about a sixth of
PostgreSQL's CPU per batch (docs/benchmarks.md, "Sixth pass"). The batch already
locks its banners (``FOR KEY SHARE``; SQLite's write lock) and drops the clicks of one
that is gone, and ``SqlRepository.delete_banner`` deletes a banner's rows from those
tables in the banner's own transaction, after the banner row, so no batch can add a row
for it in between.

Longer than 300 lines on purpose: the whole schema in one place, each table beside the
ones it refers to, as the migrations build it (the test above compares the two whole).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
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
    # When and to whom placements serve it (NULL: no limit). countries and devices are
    # comma-separated codes ("AT,DE"; "mobile,tablet"), sorted, as placements/rules.py
    # writes them.
    Column("starts_at", UtcDateTime, nullable=True),
    Column("ends_at", UtcDateTime, nullable=True),
    Column("countries", String(1024), nullable=True),
    Column("devices", String(32), nullable=True),
    Column("cap_per_day", Integer, nullable=True),
    # The query parameter the link adds a fresh click id under; NULL: no click id.
    Column("click_id_param", String(40), nullable=True),
    # Without AUTOINCREMENT SQLite reuses the id of a deleted last row, and a cached
    # "banner 7 does not exist" could then shadow a new banner 7.
    sqlite_autoincrement=True,
)

clicks = Table(
    "clicks",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    # No foreign key, like the other tables a click batch inserts into: see the docstring.
    Column("banner_id", IdType, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("user_agent", Text, nullable=True),
    Column("referrer", Text, nullable=True),
    Column("visitor", String(64), nullable=True),
    Column("bot", Boolean, nullable=False, server_default=false()),
    Column("bot_reason", String(64), nullable=True),
    Column("repeat", Boolean, nullable=False, server_default=false()),
    # Where the click came from (clicks/facts.py); NULL when not known.
    Column("country", String(2), nullable=True),
    Column("device", String(16), nullable=True),
    Column("browser", String(100), nullable=True),
    Column("os", String(100), nullable=True),
    Column("referrer_host", String(100), nullable=True),
    Column("utm_source", String(100), nullable=True),
    Column("utm_medium", String(100), nullable=True),
    Column("utm_campaign", String(100), nullable=True),
    # The placement whose signed click URL brought the click (NULL: a plain link, or a
    # signature that does not vouch for it), and the verdict on that signature: valid,
    # tampered, expired or missing (clicks/signing.py); NULL without ``p``.
    Column("placement_id", IdType, nullable=True),
    Column("signature", String(16), nullable=True),
    # The random id the link added to the Location (conversions name the click by it).
    Column("click_id", String(64), nullable=True),
    Index("ix_clicks_banner_occurred", "banner_id", "occurred_at"),
    # A range of every banner's clicks: the SQL path of filtered figures, the in-memory
    # copy's load, conversions, /live (migration 0010; its fact indexes dropped in 0013).
    Index("ix_clicks_occurred", "occurred_at"),
    sqlite_autoincrement=True,
)
# A click id holds the time its click fell in (conversions/click_ids.py): a conversion
# finds the click through ix_clicks_occurred, and a click adds no entry for its id. Only the ids
# stored before that form (22 characters, migration 0012) are indexed by id, here.
LEGACY_CLICK_ID = text("length(click_id) = 22")
Index(
    "ux_clicks_legacy_click_id",
    clicks.c.click_id,
    unique=True,
    sqlite_where=LEGACY_CLICK_ID,
    postgresql_where=LEGACY_CLICK_ID,
)

# The columns a new click row fills, in table order (every one but the id).
CLICK_VALUES: tuple[str, ...] = tuple(c.name for c in clicks.c if c.name != "id")

# The counters a click adds to: every click, then the one of valid, bot or repeat it is.
# ``click_minutes`` names them so; ``banner_totals`` calls the first ``total_clicks``.
# Every click writer builds its rollup SQL from these.
MINUTE_COUNTERS = ("clicks", "valid_clicks", "bot_clicks", "repeat_clicks")
TOTAL_COUNTERS = ("total_clicks", *MINUTE_COUNTERS[1:])

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
    Column("valid_clicks", BigInteger, nullable=False, server_default="0"),
    Column("bot_clicks", BigInteger, nullable=False, server_default="0"),
    Column("repeat_clicks", BigInteger, nullable=False, server_default="0"),
    Column("impressions", BigInteger, nullable=False, server_default="0"),
)
# Top banners reads these indexes in order: most clicks first, lower id first on ties.
Index("ix_banner_totals_rank", banner_totals.c.total_clicks.desc(), banner_totals.c.banner_id)
Index(
    "ix_banner_totals_valid_rank",
    banner_totals.c.valid_clicks.desc(),
    banner_totals.c.banner_id,
)

click_minutes = Table(
    "click_minutes",
    metadata,
    Column("banner_id", IdType, primary_key=True),
    Column("minute", UtcDateTime, primary_key=True),
    Column("clicks", BigInteger, nullable=False),
    Column("valid_clicks", BigInteger, nullable=False, server_default="0"),
    Column("bot_clicks", BigInteger, nullable=False, server_default="0"),
    Column("repeat_clicks", BigInteger, nullable=False, server_default="0"),
)

impression_minutes = Table(
    "impression_minutes",
    metadata,
    Column(
        "banner_id",
        IdType,
        ForeignKey("banners.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("minute", UtcDateTime, primary_key=True),
    Column("impressions", BigInteger, nullable=False),
)

# Clicks per banner, UTC day, dimension and value (total and valid), kept in the click's
# transaction; values beyond the day's top N of a (banner, dimension) fold into "(other)"
# (db/breakdown_writes.py), so the table grows with days, not with what clients send.
click_breakdowns = Table(
    "click_breakdowns",
    metadata,
    Column("banner_id", IdType, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("dimension", String(16), primary_key=True),
    Column("value", String(100), primary_key=True),
    Column("clicks", BigInteger, nullable=False),
    Column("valid_clicks", BigInteger, nullable=False),
    # The all-banners breakdown reads by dimension and day.
    Index("ix_click_breakdowns_dimension_day", "dimension", "day"),
    # Clustered on the key: a batch updates a few rows per banner, and one B-tree fewer
    # per commit is less to write and sync on SQLite.
    sqlite_with_rowid=False,
)

# Times are integer microseconds since the epoch: the window arithmetic of the upsert
# is then the same plain integer SQL on SQLite and PostgreSQL.
visitor_clicks = Table(
    "visitor_clicks",
    metadata,
    Column("banner_id", IdType, primary_key=True),
    Column("visitor", String(64), primary_key=True),
    # Start of the visitor's current window: the time of their last valid click.
    Column("counted_us", BigInteger, nullable=False),
    # Scratch column: the upsert copies the old counted_us here, and RETURNING hands it
    # back (NULL when the row is new), which says whether this click is a repeat.
    Column("prev_us", BigInteger, nullable=True),
    Index("ix_visitor_clicks_counted", "counted_us"),
)

visitor_salts = Table(
    "visitor_salts",
    metadata,
    Column("day", Date, primary_key=True),
    Column("sealed", LargeBinary(32), nullable=False),
    Column("key_check", LargeBinary(8), nullable=False),
)

placements = Table(
    "placements",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    sqlite_autoincrement=True,  # as banners: a deleted id is never handed out again
)

placement_banners = Table(
    "placement_banners",
    metadata,
    Column(
        "placement_id",
        IdType,
        ForeignKey("placements.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # A deleted banner leaves every placement with its row.
    Column("banner_id", IdType, ForeignKey("banners.id", ondelete="CASCADE"), primary_key=True),
    Column("weight", Integer, nullable=False),
    Index("ix_placement_banners_banner", "banner_id"),
)

# A placement's impressions and clicks per banner and UTC minute, kept in the impression
# write's and the click batch's own transactions. No foreign key, as the click tables:
# the banner's and the placement's deletes clear their rows.
placement_minutes = Table(
    "placement_minutes",
    metadata,
    Column("placement_id", IdType, primary_key=True),
    Column("banner_id", IdType, primary_key=True),
    Column("minute", UtcDateTime, primary_key=True),
    Column("impressions", BigInteger, nullable=False, server_default="0"),
    Column("clicks", BigInteger, nullable=False, server_default="0"),
    Column("valid_clicks", BigInteger, nullable=False, server_default="0"),
    Index("ix_placement_minutes_banner", "banner_id"),
    sqlite_with_rowid=False,
)

# Conversions (bannertrack.conversions): one row per (click id, goal), the unique
# constraint that makes a report idempotent even when two identical ones race. Amounts
# are integer millionths (value_micros), exact on both databases; the rollups below are
# written in the conversion's own transaction and kept forever, like the click rollups.
conversions = Table(
    "conversions",
    metadata,
    Column("id", IdType, primary_key=True, autoincrement=True),
    Column("click_id", String(64), nullable=False),
    Column("goal", String(40), nullable=False),
    Column("banner_id", IdType, ForeignKey("banners.id", ondelete="CASCADE"), nullable=False),
    Column("placement_id", IdType, nullable=True),
    Column("value_micros", BigInteger, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("click_at", UtcDateTime, nullable=False),
    UniqueConstraint("click_id", "goal", name="uq_conversions_click_goal"),
    Index("ix_conversions_banner_occurred", "banner_id", "occurred_at"),
    sqlite_autoincrement=True,
)

# Per banner, goal and currency ('' for a conversion without value): ClickStats.
conversion_totals = Table(
    "conversion_totals",
    metadata,
    Column("banner_id", IdType, ForeignKey("banners.id", ondelete="CASCADE"), primary_key=True),
    Column("goal", String(40), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("conversions", BigInteger, nullable=False),
    Column("revenue_micros", BigInteger, nullable=False),
)

# Per banner, UTC minute, placement (0: none), goal and currency: ranges and placements.
conversion_minutes = Table(
    "conversion_minutes",
    metadata,
    Column("banner_id", IdType, ForeignKey("banners.id", ondelete="CASCADE"), primary_key=True),
    Column("minute", UtcDateTime, primary_key=True),
    Column("placement_id", IdType, primary_key=True),
    Column("goal", String(40), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("conversions", BigInteger, nullable=False),
    Column("revenue_micros", BigInteger, nullable=False),
    Index("ix_conversion_minutes_minute", "minute"),
)

# Conversions per banner, UTC day and the converting click's facts (a conversion adds to
# one row per dimension, "(none)" where its click has no value), for count=conversions.
conversion_breakdowns = Table(
    "conversion_breakdowns",
    metadata,
    Column("banner_id", IdType, ForeignKey("banners.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("dimension", String(16), primary_key=True),
    Column("value", String(100), primary_key=True),
    Column("conversions", BigInteger, nullable=False),
    Index("ix_conversion_breakdowns_dimension_day", "dimension", "day"),
)

# The tables a click batch inserts rows into, without a foreign key to ``banners``: a
# banner's delete clears its rows from them itself (``SqlRepository.delete_banner``).
CLICK_TABLES: tuple[Table, ...] = (
    clicks,
    visitor_clicks,
    click_minutes,
    click_breakdowns,
    placement_minutes,
)

# Spooled batches replayed into this database (clicks/spool.py): the key is written in the
# batch's own transaction, so a replay that committed is never committed again.
replayed_batches = Table(
    "replayed_batches",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("replayed_at", UtcDateTime, nullable=False),
)
