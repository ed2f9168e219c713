"""placements: spots on a page that serve their banners by weight

Adds ``placements`` and ``placement_banners`` (a placement's banners with their weights,
both keys cascading), the banner's schedule (``starts_at``, ``ends_at``), targeting
(``countries``, ``devices``: comma-separated codes, NULL for no limit) and frequency cap
(``cap_per_day``), the click's ``placement_id`` and ``signature`` (the verdict on a
placement click URL's signature: valid, tampered, expired or missing; NULL for a plain
link), and ``placement_minutes``, the per-minute rollup of a placement's impressions and
clicks per banner. Like the other tables a click batch writes, ``placement_minutes`` has
no foreign key: the banner's and the placement's deletes clear their rows themselves.

Every new column is nullable, so existing rows keep their meaning (no schedule, no
targeting, no cap; a click without a placement) and nothing is back-filled.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Frozen here, not imported: a migration must not change when the service's code does.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)
_BANNER_COLUMNS = ("starts_at", "ends_at", "countries", "devices", "cap_per_day")
_CLICK_COLUMNS = ("placement_id", "signature")


def upgrade() -> None:
    op.create_table(
        "placements",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("width", sa.Integer, nullable=True),
        sa.Column("height", sa.Integer, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "placement_banners",
        sa.Column(
            "placement_id",
            _ID,
            sa.ForeignKey("placements.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "banner_id",
            _ID,
            sa.ForeignKey("banners.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("weight", sa.Integer, nullable=False),
    )
    op.create_index("ix_placement_banners_banner", "placement_banners", ["banner_id"])
    op.create_table(
        "placement_minutes",
        sa.Column("placement_id", _ID, primary_key=True),
        sa.Column("banner_id", _ID, primary_key=True),
        sa.Column("minute", _TIME, primary_key=True),
        sa.Column("impressions", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("clicks", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("valid_clicks", sa.BigInteger, nullable=False, server_default="0"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_placement_minutes_banner", "placement_minutes", ["banner_id"])
    # ADD COLUMN of a nullable column: a catalogue change on both, no copy of the rows.
    op.add_column("banners", sa.Column("starts_at", _TIME, nullable=True))
    op.add_column("banners", sa.Column("ends_at", _TIME, nullable=True))
    op.add_column("banners", sa.Column("countries", sa.String(1024), nullable=True))
    op.add_column("banners", sa.Column("devices", sa.String(32), nullable=True))
    op.add_column("banners", sa.Column("cap_per_day", sa.Integer, nullable=True))
    op.add_column("clicks", sa.Column("placement_id", _ID, nullable=True))
    op.add_column("clicks", sa.Column("signature", sa.String(16), nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN on both (SQLite >= 3.35 has it for a column without index or
    # key), so SQLite does not copy ``banners``, which other tables' keys refer to.
    for table, columns in (("clicks", _CLICK_COLUMNS), ("banners", _BANNER_COLUMNS)):
        for name in columns:
            op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")
    op.drop_index("ix_placement_minutes_banner", "placement_minutes")
    op.drop_table("placement_minutes")
    op.drop_index("ix_placement_banners_banner", "placement_banners")
    op.drop_table("placement_banners")
    op.drop_table("placements")
