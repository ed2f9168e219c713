"""A conversion finds its click by id through an index, and a click id adds no entry.

A timed click id (``conversions/click_ids.py``) is found by ``occurred_at`` in its window
through ``ix_clicks_occurred``; a legacy one (22 characters, stored before migration 0012) through
``ux_clicks_legacy_click_id``, which holds nothing else. Both plans are read from the
database itself: a lookup that fell back to reading every click would pass every other
test and only show as a slow conversion on a big table.
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from tests.support.banners import tagged_banner

from bannertrack.conversions.click_ids import new_click_id
from bannertrack.conversions.values import ConversionIn
from bannertrack.db.conversion_writes import click_queries
from bannertrack.db.repository import SqlRepository
from bannertrack.errors import NotFoundError
from bannertrack.models import ClickIn

WINDOW = timedelta(days=30)
LEGACY = "q3Lx0v6mT1aZk9W2bYc8Rg"


async def _plan(repo: SqlRepository, *click_ids: str) -> str:
    (query,) = click_queries(click_ids)
    sql = str(query.compile(repo.engine, compile_kwargs={"literal_binds": True}))
    async with repo.engine.connect() as conn:
        if repo.dialect == "sqlite":
            rows = await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
            return "\n".join(str(r[-1]) for r in rows)
        # A few rows make any table scan cheapest; refuse scans to see what can be used.
        await conn.execute(text("SET enable_seqscan = off"))
        rows = await conn.execute(text(f"EXPLAIN {sql}"))
        return "\n".join(str(r[0]) for r in rows)


async def _convert(repo: SqlRepository, click_id: str, at: datetime) -> int:
    data = ConversionIn(
        click_id=click_id, goal="sale", value_micros=None, currency=None, occurred_at=at
    )
    return (await repo.record_conversion(data, WINDOW)).conversion.banner_id


async def test_timed_and_legacy_ids_are_found_through_an_index(sql_repo: SqlRepository) -> None:
    banner = await tagged_banner(sql_repo)
    now = datetime.now(UTC)
    timed = new_click_id(now)
    await sql_repo.record_clicks(
        [
            ClickIn(banner_id=banner.id, occurred_at=now, click_id=timed),
            ClickIn(banner_id=banner.id, occurred_at=now, click_id=LEGACY),
            ClickIn(banner_id=banner.id, occurred_at=now),  # no id: nothing to find
        ]
    )
    assert "ix_clicks_occurred" in await _plan(sql_repo, timed)
    assert "ix_clicks_occurred" in await _plan(sql_repo, timed, new_click_id(now))  # a batch's
    assert "ux_clicks_legacy_click_id" in await _plan(sql_repo, LEGACY)
    assert await _convert(sql_repo, timed, now) == banner.id
    assert await _convert(sql_repo, LEGACY, now) == banner.id
    # The random part alone names nothing: the click must lie in the id's window.
    other_time = new_click_id(now + timedelta(seconds=1))[:12] + timed[12:]
    with pytest.raises(NotFoundError):
        await _convert(sql_repo, other_time, now)


async def test_ids_of_the_microsecond_form_and_of_many_windows_are_found(
    sql_repo: SqlRepository,
) -> None:
    """Ids handed out before the 10 ms windows (the click's microsecond, 32 characters)
    still convert, and a batch naming clicks of several windows reads the index."""
    banner = await tagged_banner(sql_repo)
    now = datetime.now(UTC)
    us = (now - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    secret = os.urandom(16)
    old = base64.urlsafe_b64encode(us.to_bytes(8, "big") + secret).decode()
    later = now + timedelta(seconds=2)
    other = new_click_id(later)
    await sql_repo.record_clicks(
        [
            ClickIn(banner_id=banner.id, occurred_at=now, click_id=old),
            ClickIn(banner_id=banner.id, occurred_at=later, click_id=other),
        ]
    )
    assert "ix_clicks_occurred" in await _plan(sql_repo, old, other)
    assert await _convert(sql_repo, old, later) == banner.id
    assert await _convert(sql_repo, other, later) == banner.id
    # Its random part one microsecond off its click's time names nothing.
    off = base64.urlsafe_b64encode((us + 1).to_bytes(8, "big") + secret).decode()
    with pytest.raises(NotFoundError):
        await _convert(sql_repo, off, later)
