"""click filter indexes: the dashboard's filtered figures read raw clicks by time and fact

A filter on a click fact (``?country=DE``) is counted from the raw ``clicks`` rows of the
range. ``ix_clicks_occurred`` finds a range's clicks of every banner;
``ix_clicks_country_occurred`` and ``ix_clicks_utm_campaign_occurred`` find the clicks of
one country or campaign in a range without reading the others. Every index is one more
B-tree each click updates, so only these: docs/benchmarks.md ("Dashboard filters") has
their read figures, their cost to a click batch (all five tried: +37 %; these: a few per
cent) and what the other facts' filters take without an index of their own.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Frozen here, not imported: a migration must not change when the service's code does.
_INDEXES = (
    ("ix_clicks_occurred", ("occurred_at",)),
    ("ix_clicks_country_occurred", ("country", "occurred_at")),
    ("ix_clicks_utm_campaign_occurred", ("utm_campaign", "occurred_at")),
)


def upgrade() -> None:
    for name, columns in _INDEXES:
        op.create_index(name, "clicks", list(columns))


def downgrade() -> None:
    for name, _columns in reversed(_INDEXES):
        op.drop_index(name, table_name="clicks")
