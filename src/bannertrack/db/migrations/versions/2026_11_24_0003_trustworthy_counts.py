"""trustworthy counts: bot and repeat flags, impressions, shared visitor salts

Clicks recorded before this revision carry no flags: nobody can tell now whether they
were bots or repeats (the salt that made their visitor keys comparable may be gone), so
they are back-filled as valid, and every count they were part of stays as it was.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _count(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger, nullable=False, server_default="0")


def upgrade() -> None:
    op.add_column("clicks", sa.Column("bot", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("clicks", sa.Column("bot_reason", sa.String(64), nullable=True))
    op.add_column(
        "clicks", sa.Column("repeat", sa.Boolean, nullable=False, server_default=sa.false())
    )
    for name in ("valid_clicks", "bot_clicks", "repeat_clicks", "impressions"):
        op.add_column("banner_totals", _count(name))
    for name in ("valid_clicks", "bot_clicks", "repeat_clicks"):
        op.add_column("click_minutes", _count(name))
    op.execute("UPDATE banner_totals SET valid_clicks = total_clicks")
    op.execute("UPDATE click_minutes SET valid_clicks = clicks")
    op.create_index(
        "ix_banner_totals_valid_rank",
        "banner_totals",
        [sa.text("valid_clicks DESC"), "banner_id"],
    )
    op.create_table(
        "impression_minutes",
        sa.Column(
            "banner_id",
            _ID,
            sa.ForeignKey("banners.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("minute", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("impressions", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "visitor_clicks",
        sa.Column(
            "banner_id",
            _ID,
            sa.ForeignKey("banners.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("visitor", sa.String(64), primary_key=True),
        sa.Column("counted_us", sa.BigInteger, nullable=False),
        sa.Column("prev_us", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_visitor_clicks_counted", "visitor_clicks", ["counted_us"])
    op.create_table(
        "visitor_salts",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("salt", sa.LargeBinary(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("visitor_salts")
    op.drop_index("ix_visitor_clicks_counted", table_name="visitor_clicks")
    op.drop_table("visitor_clicks")
    op.drop_table("impression_minutes")
    op.drop_index("ix_banner_totals_valid_rank", table_name="banner_totals")
    with op.batch_alter_table("click_minutes") as batch:
        for name in ("valid_clicks", "bot_clicks", "repeat_clicks"):
            batch.drop_column(name)
    with op.batch_alter_table("banner_totals") as batch:
        for name in ("valid_clicks", "bot_clicks", "repeat_clicks", "impressions"):
            batch.drop_column(name)
    with op.batch_alter_table("clicks") as batch:
        for name in ("bot", "bot_reason", "repeat"):
            batch.drop_column(name)
