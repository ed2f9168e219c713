"""click rollups: per-banner totals and per-minute counts, back-filled from raw clicks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The minute a click falls in, in the very text form SQLAlchemy binds a datetime on
# SQLite, so the rows back-filled here compare equal to the ones the service writes.
_MINUTE = {
    "postgresql": "date_trunc('minute', occurred_at)",
    "sqlite": "strftime('%Y-%m-%d %H:%M:00.000000', occurred_at)",
}


def upgrade() -> None:
    op.create_table(
        "banner_totals",
        sa.Column(
            "banner_id",
            _ID,
            sa.ForeignKey("banners.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("total_clicks", sa.BigInteger, nullable=False),
        sa.Column("first_click_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_click_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_banner_totals_rank", "banner_totals", [sa.text("total_clicks DESC"), "banner_id"]
    )
    op.create_table(
        "click_minutes",
        sa.Column(
            "banner_id",
            _ID,
            sa.ForeignKey("banners.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("minute", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("clicks", sa.BigInteger, nullable=False),
    )
    minute = _MINUTE[op.get_bind().dialect.name]
    op.execute(
        "INSERT INTO banner_totals (banner_id, total_clicks, first_click_at, last_click_at) "
        "SELECT b.id, COUNT(c.id), MIN(c.occurred_at), MAX(c.occurred_at) "
        "FROM banners b LEFT JOIN clicks c ON c.banner_id = b.id GROUP BY b.id"
    )
    op.execute(
        "INSERT INTO click_minutes (banner_id, minute, clicks) "
        f"SELECT banner_id, {minute}, COUNT(*) FROM clicks GROUP BY banner_id, {minute}"
    )


def downgrade() -> None:
    op.drop_table("click_minutes")
    op.drop_index("ix_banner_totals_rank", table_name="banner_totals")
    op.drop_table("banner_totals")
