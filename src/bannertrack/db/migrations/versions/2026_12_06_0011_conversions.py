"""conversions: click ids on the link, conversions and their rollups

``banners.click_id_param`` names the query parameter the tracking link adds a random
click id under (NULL: none); ``clicks.click_id`` keeps it, unique where set (a partial
index, so clicks without an id add no entry). ``conversions`` holds one row per
(click id, goal), unique; ``conversion_totals``, ``conversion_minutes`` and
``conversion_breakdowns`` are its rollups. Amounts are integer millionths.

Adding two nullable columns is a catalogue change on both databases; the new tables
start empty. Downgrade drops all of it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Frozen here, not imported: a migration must not change when the service's code does.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)


def _banner_id(primary_key: bool) -> sa.Column[int]:
    return sa.Column(
        "banner_id",
        _ID,
        sa.ForeignKey("banners.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


def upgrade() -> None:
    op.add_column("banners", sa.Column("click_id_param", sa.String(40), nullable=True))
    op.add_column("clicks", sa.Column("click_id", sa.String(64), nullable=True))
    op.create_index(
        "ux_clicks_click_id",
        "clicks",
        ["click_id"],
        unique=True,
        sqlite_where=sa.text("click_id IS NOT NULL"),
        postgresql_where=sa.text("click_id IS NOT NULL"),
    )
    op.create_table(
        "conversions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("click_id", sa.String(64), nullable=False),
        sa.Column("goal", sa.String(40), nullable=False),
        _banner_id(False),
        sa.Column("placement_id", _ID, nullable=True),
        sa.Column("value_micros", sa.BigInteger, nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("occurred_at", _TIME, nullable=False),
        sa.Column("click_at", _TIME, nullable=False),
        sa.UniqueConstraint("click_id", "goal", name="uq_conversions_click_goal"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_conversions_banner_occurred", "conversions", ["banner_id", "occurred_at"])
    op.create_table(
        "conversion_totals",
        _banner_id(True),
        sa.Column("goal", sa.String(40), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("conversions", sa.BigInteger, nullable=False),
        sa.Column("revenue_micros", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "conversion_minutes",
        _banner_id(True),
        sa.Column("minute", _TIME, primary_key=True),
        sa.Column("placement_id", _ID, primary_key=True),
        sa.Column("goal", sa.String(40), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("conversions", sa.BigInteger, nullable=False),
        sa.Column("revenue_micros", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_conversion_minutes_minute", "conversion_minutes", ["minute"])
    op.create_table(
        "conversion_breakdowns",
        _banner_id(True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("dimension", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(100), primary_key=True),
        sa.Column("conversions", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_conversion_breakdowns_dimension_day", "conversion_breakdowns", ["dimension", "day"]
    )


def downgrade() -> None:
    for table in ("conversion_breakdowns", "conversion_minutes", "conversion_totals"):
        op.drop_table(table)
    op.drop_index("ix_conversions_banner_occurred", table_name="conversions")
    op.drop_table("conversions")
    op.drop_index("ux_clicks_click_id", table_name="clicks")
    op.drop_column("clicks", "click_id")
    op.drop_column("banners", "click_id_param")
