"""no click fact indexes: filtered figures come from the in-memory copy of the clicks

Migration 0010 gave the SQL path of the dashboard's filtered figures an index per fact a
marketer filters by most, ``(country, occurred_at)`` and ``(utm_campaign, occurred_at)``.
Those figures are now counted from each worker's in-memory copy of the recent clicks
(``db/click_copy.py``), which reads ``clicks`` by its primary key; the SQL path is left
for the seconds before the copy is loaded and for days older than it holds, and reads by
``ix_clicks_occurred`` (kept: a conversion finds its click by it) or in table order. Each
index was one more B-tree every click updates: together 1.13x a 256-click SQLite batch,
1.05x a PostgreSQL one (docs/benchmarks.md, "Dashboard filters").

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Frozen here, not imported: a migration must not change when the service's code does.
_INDEXES = (
    ("ix_clicks_country_occurred", ("country", "occurred_at")),
    ("ix_clicks_utm_campaign_occurred", ("utm_campaign", "occurred_at")),
)


def upgrade() -> None:
    for name, _columns in _INDEXES:
        op.drop_index(name, table_name="clicks")


def downgrade() -> None:
    for name, columns in _INDEXES:
        op.create_index(name, "clicks", list(columns))
