"""click ids without an index entry: a click id holds its click's time

From here on the link hands out click ids that begin with the click's own time
(``conversions/click_ids.py``), and a conversion finds its click by
``occurred_at = t AND click_id = id`` through ``ix_clicks_occurred``. The unique index on
every click id (``ux_clicks_click_id``: random keys, a B-tree leaf per click in a batch)
goes; the ids handed out before, 22 characters each, stay findable through a partial
index that holds only them (``ux_clicks_legacy_click_id``), so new clicks add no entry.

Creating the partial index reads ``clicks`` once (as migration 0010's indexes did).
Downgrade restores the index on every click id; ids of either form are unique.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Frozen here, not imported: a migration must not change when the service's code does.
_LEGACY = "length(click_id) = 22"
_ANY = "click_id IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ux_clicks_click_id", table_name="clicks")
    op.create_index(
        "ux_clicks_legacy_click_id",
        "clicks",
        ["click_id"],
        unique=True,
        sqlite_where=sa.text(_LEGACY),
        postgresql_where=sa.text(_LEGACY),
    )


def downgrade() -> None:
    op.drop_index("ux_clicks_legacy_click_id", table_name="clicks")
    op.create_index(
        "ux_clicks_click_id",
        "clicks",
        ["click_id"],
        unique=True,
        sqlite_where=sa.text(_ANY),
        postgresql_where=sa.text(_ANY),
    )
