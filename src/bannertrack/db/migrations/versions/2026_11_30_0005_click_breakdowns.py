"""click breakdowns: where a click came from, on the raw row and as daily rollups

Adds the derived facts to ``clicks`` (country, device, browser, os, referrer_host,
utm_source/medium/campaign) and the ``click_breakdowns`` rollup, then back-fills both
from the raw clicks still kept: device, browser and OS from the stored user agent, the
referrer host from the stored referrer. Country and utm_* of old clicks cannot be known
(the address was never stored, the link's query was not kept): they count as "(none)".
Clicks already deleted by retention are not in the back-filled rollup.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from bannertrack.clicks.facts import agent_facts, referrer_host
from bannertrack.db.breakdown_writes import BreakdownFold
from bannertrack.models import DIMENSIONS, ClickFacts

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_FACTS = (
    ("country", 2),
    ("device", 16),
    ("browser", 100),
    ("os", 100),
    ("referrer_host", 100),
    ("utm_source", 100),
    ("utm_medium", 100),
    ("utm_campaign", 100),
)
_PAGE = 5000


def upgrade() -> None:
    for name, length in _FACTS:
        op.add_column("clicks", sa.Column(name, sa.String(length), nullable=True))
    op.create_table(
        "click_breakdowns",
        sa.Column(
            "banner_id",
            _ID,
            sa.ForeignKey("banners.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("dimension", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(100), primary_key=True),
        sa.Column("clicks", sa.BigInteger, nullable=False),
        sa.Column("valid_clicks", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_click_breakdowns_dimension_day", "click_breakdowns", ["dimension", "day"])
    _backfill(op.get_bind())


def _backfill(conn: sa.Connection) -> None:
    """Derive the facts of every kept click, page by page in id order (first come first
    served under the same per-day top-N fold as ingest), then write the rollup once.

    Long on purpose: a migration is frozen in time and must not call service code
    that may change later, so the paging, the fold and the write stay here together.
    """
    clicks = sa.table(
        "clicks",
        *(sa.column(n) for n in ("id", "banner_id", "occurred_at", "user_agent", "referrer")),
        *(sa.column(n) for n in ("bot", "repeat", "device", "browser", "os", "referrer_host")),
    )
    fold = BreakdownFold()
    tally: dict[tuple[int, date, str, str], list[int]] = {}
    last = 0
    while True:
        rows = conn.execute(
            sa.select(
                clicks.c.id,
                clicks.c.banner_id,
                clicks.c.occurred_at,
                clicks.c.user_agent,
                clicks.c.referrer,
                clicks.c.bot,
                clicks.c.repeat,
            )
            .where(clicks.c.id > last)
            .order_by(clicks.c.id)
            .limit(_PAGE)
        ).all()
        if not rows:
            break
        updates = []
        for r in rows:
            agent = agent_facts(r.user_agent[:1024] if r.user_agent else None)
            facts = ClickFacts(
                device=agent.device,
                browser=agent.browser,
                os=agent.os,
                referrer_host=referrer_host(r.referrer),
            )
            updates.append({"c_id": r.id, **{k: getattr(facts, k) for k, _ in _FACTS[1:5]}})
            day = _utc(r.occurred_at).date()
            valid = 0 if r.bot or r.repeat else 1
            for dimension in DIMENSIONS:
                value = fold.value_for((r.banner_id, day), dimension, facts.value(dimension))
                counts = tally.setdefault((r.banner_id, day, dimension, value), [0, 0])
                counts[0] += 1
                counts[1] += valid
        conn.execute(
            clicks.update()
            .where(clicks.c.id == sa.bindparam("c_id"))
            .values({k: sa.bindparam(k) for k, _ in _FACTS[1:5]}),
            updates,
        )
        last = rows[-1].id
    rollup = sa.table(
        "click_breakdowns",
        *(sa.column(n) for n in ("banner_id", "day", "dimension", "value")),
        *(sa.column(n) for n in ("clicks", "valid_clicks")),
    )
    if tally:
        conn.execute(
            rollup.insert(),
            [
                {
                    "banner_id": b,
                    "day": d,
                    "dimension": dim,
                    "value": v,
                    "clicks": n,
                    "valid_clicks": ok,
                }
                for (b, d, dim, v), (n, ok) in sorted(tally.items())
            ],
        )


def _utc(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite without declared types hands back text
        value = datetime.fromisoformat(value)
    moment: datetime = value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def downgrade() -> None:
    op.drop_index("ix_click_breakdowns_dimension_day", table_name="click_breakdowns")
    op.drop_table("click_breakdowns")
    for name, _ in reversed(_FACTS):
        op.drop_column("clicks", name)
