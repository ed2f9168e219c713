"""breakdown day totals: one row of all a (banner, day)'s clicks instead of "(none)" rows

Every click used to add to 8 ``click_breakdowns`` rows, one per dimension, "(none)" for a
dimension it has no value of (most clicks have no referrer and no campaign). Now a
(banner, day) has one row counting all its clicks (dimension and value ``*``) and no
"(none)" rows: a dimension's "(none)" is that row less the dimension's other rows,
worked out on read. Here the day rows are made from the stored rows (every click is in
each dimension exactly once, so one dimension's rows sum to the day's clicks) and the
"(none)" rows are deleted. Downgrade puts them back from the same arithmetic.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Frozen here, not imported: a migration must not change when the service's code does.
_TOTAL = "*"
_NONE = "(none)"
_DIMENSIONS = (
    "referrer", "utm_source", "utm_medium", "utm_campaign", "country", "device", "browser", "os",
)  # fmt: skip


def upgrade() -> None:
    op.execute(
        "INSERT INTO click_breakdowns (banner_id, day, dimension, value, clicks, valid_clicks) "
        f"SELECT banner_id, day, '{_TOTAL}', '{_TOTAL}', SUM(clicks), SUM(valid_clicks) "
        "FROM click_breakdowns WHERE dimension = 'device' GROUP BY banner_id, day"
    )
    op.execute(f"DELETE FROM click_breakdowns WHERE value = '{_NONE}'")


def downgrade() -> None:
    for dimension in _DIMENSIONS:
        op.execute(
            "INSERT INTO click_breakdowns "
            "(banner_id, day, dimension, value, clicks, valid_clicks) "
            f"SELECT t.banner_id, t.day, '{dimension}', '{_NONE}', "
            "t.clicks - COALESCE(SUM(v.clicks), 0), "
            "t.valid_clicks - COALESCE(SUM(v.valid_clicks), 0) "
            "FROM click_breakdowns t LEFT JOIN click_breakdowns v "
            f"ON v.banner_id = t.banner_id AND v.day = t.day AND v.dimension = '{dimension}' "
            f"WHERE t.dimension = '{_TOTAL}' "
            "GROUP BY t.banner_id, t.day, t.clicks, t.valid_clicks "
            "HAVING t.clicks - COALESCE(SUM(v.clicks), 0) > 0"
        )
    op.execute(f"DELETE FROM click_breakdowns WHERE dimension = '{_TOTAL}'")
