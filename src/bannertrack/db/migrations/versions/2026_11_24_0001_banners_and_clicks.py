"""banners and raw clicks

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "banners",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("image_url", sa.String(2048), nullable=False),
        sa.Column("target_url", sa.String(2048), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("forward_query", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "clicks",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "banner_id",
            _ID,
            sa.ForeignKey("banners.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_agent", sa.Text, nullable=True),
        sa.Column("referrer", sa.Text, nullable=True),
        sa.Column("visitor", sa.String(64), nullable=True),
        sa.Column("ip_prefix", sa.String(64), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_clicks_banner_occurred", "clicks", ["banner_id", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_clicks_banner_occurred", table_name="clicks")
    op.drop_table("clicks")
    op.drop_table("banners")
