"""click breakdowns: where a click came from, on the raw row and as daily rollups

Adds the derived facts to ``clicks`` (country, device, browser, os, referrer_host,
utm_source/medium/campaign) and the ``click_breakdowns`` rollup, then back-fills both
from the raw clicks still kept: device, browser and OS from the stored user agent, the
referrer host from the stored referrer. Country and utm_* of old clicks cannot be known
(the address was never stored, the link's query was not kept): they count as "(none)".
Clicks already deleted by retention are not in the back-filled rollup.

Frozen: the facts (``clicks/facts.py``) and the top-N fold (``db/breakdown_writes.py``)
are copied here as they were when this revision was written, so later changes to the
service cannot change what this migration does. Only ``ua-parser`` is used from outside.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op
from ua_parser import parse as parse_agent

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

# As of this revision: the breakdown dimensions, the rollup's markers, the per-day top N.
_DIMENSIONS = (
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "country",
    "device",
    "browser",
    "os",
)
_NONE_VALUE = "(none)"
_OTHER_VALUE = "(other)"
_ALWAYS = frozenset({_NONE_VALUE, _OTHER_VALUE})
_TOP_N = 50
_MAX_VALUE = 100
_DESKTOP_OS = frozenset(
    {"Windows", "Mac OS X", "Linux", "Ubuntu", "Fedora", "Chrome OS", "FreeBSD", "OpenBSD"}
)
_MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "KaiOS", "BlackBerry OS"})
_TABLETS = ("ipad", "tablet", "kindle", "nexus 7", "nexus 9", "nexus 10", "sm-t", "tab")


class _AgentFacts(NamedTuple):
    device: str | None
    browser: str | None
    os: str | None


@lru_cache(maxsize=4096)
def _agent_facts(user_agent: str | None) -> _AgentFacts:
    """Device class, browser and OS of a user agent (``click_facts.agent_facts`` then)."""
    if not user_agent:
        return _AgentFacts(None, None, None)
    parsed = parse_agent(user_agent)
    browser = _family(parsed.user_agent.family if parsed.user_agent else None)
    os = _family(parsed.os.family if parsed.os else None)
    device_family = parsed.device.family if parsed.device else None
    return _AgentFacts(_device_class(user_agent, device_family, os), browser, os)


def _family(name: str | None) -> str | None:
    if not name or name == "Other":
        return None
    return name[:_MAX_VALUE]


def _device_class(user_agent: str, device_family: str | None, os: str | None) -> str:
    family = (device_family or "").lower()
    if family == "spider":
        return "bot"
    if any(t in family for t in _TABLETS) or (os == "Android" and "Mobile" not in user_agent):
        return "tablet"
    if "Mobi" in user_agent or os in _MOBILE_OS:
        return "mobile"
    if os in _DESKTOP_OS:
        return "desktop"
    return "other"


def _referrer_host(referrer: str | None) -> str | None:
    """The referrer's host, lower case and without ``www.``; ``None`` if it has none."""
    if not referrer:
        return None
    try:
        host = urlsplit(referrer.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.removeprefix("www.")
    return host[:_MAX_VALUE] or None


class _Fold:
    """Per (banner, day, dimension) the first ``_TOP_N`` values keep their own row; later
    ones count as "(other)" (``BreakdownFold.value_for`` then, over an empty table)."""

    def __init__(self) -> None:
        self._admitted: dict[tuple[int, date, str], set[str]] = {}

    def value_for(self, pair: tuple[int, date], dimension: str, value: str | None) -> str:
        if value is None:
            return _NONE_VALUE
        if value in _ALWAYS:
            return _OTHER_VALUE  # a client cannot pose as one of our markers
        admitted = self._admitted.setdefault((*pair, dimension), set())
        if value in admitted:
            return value
        if len(admitted) >= _TOP_N:
            return _OTHER_VALUE
        admitted.add(value)
        return value


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
    fold = _Fold()
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
            agent = _agent_facts(r.user_agent[:1024] if r.user_agent else None)
            host = _referrer_host(r.referrer)
            # Country and utm_* of an old click cannot be known: None, counted as "(none)".
            facts: dict[str, str | None] = {
                "device": agent.device,
                "browser": agent.browser,
                "os": agent.os,
                "referrer": host,
            }
            updates.append(
                {
                    "c_id": r.id,
                    "device": agent.device,
                    "browser": agent.browser,
                    "os": agent.os,
                    "referrer_host": host,
                }
            )
            day = _utc(r.occurred_at).date()
            valid = 0 if r.bot or r.repeat else 1
            for dimension in _DIMENSIONS:
                value = fold.value_for((r.banner_id, day), dimension, facts.get(dimension))
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
