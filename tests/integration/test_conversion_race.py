"""Two identical conversion reports at once count once: the unique constraint decides.

The first report's transaction is held open after its insert; the second starts and
must wait for it (PostgreSQL: on the unique index entry, seen in pg_stat_activity as a
lock wait before the first commits; SQLite: on the write lock). Whatever the order,
exactly one report creates the conversion, both answer the same row, and every rollup
counts it once.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text
from tests.support.banners import tagged_banner

from bannertrack.conversions.values import ConversionIn
from bannertrack.db import conversion_writes
from bannertrack.db.repository import SqlRepository
from bannertrack.db.tables import conversion_breakdowns, conversion_minutes, conversion_totals
from bannertrack.models import ClickIn

WINDOW = timedelta(days=30)
CLICK_ID = "K" * 22


async def _lock_waiters(repo: SqlRepository) -> int:
    async with repo.engine.connect() as conn:
        n = await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
        )
        return int(n.scalar_one())


async def test_a_report_racing_an_uncommitted_identical_one_counts_nothing(
    database_url: str,
) -> None:
    first_repo = SqlRepository.from_url(database_url)
    second_repo = SqlRepository.from_url(database_url)
    try:
        banner = await tagged_banner(first_repo)
        now = datetime.now(UTC)
        await first_repo.record_clicks(
            [ClickIn(banner_id=banner.id, occurred_at=now, click_id=CLICK_ID)]
        )
        data = ConversionIn(
            click_id=CLICK_ID, goal="sale", value_micros=19_900_000, currency="EUR", occurred_at=now
        )
        async with first_repo.engine.connect() as conn:
            await conn.begin()
            if first_repo.dialect == "sqlite":
                await conn.execute(text("UPDATE banners SET id = id WHERE 0"))  # the write lock
            first = await conversion_writes.record_conversion(
                conn, first_repo.dialect, data, WINDOW
            )
            second = asyncio.create_task(second_repo.record_conversion(data, WINDOW))
            if first_repo.dialect == "postgresql":
                deadline = time.monotonic() + 10
                while await _lock_waiters(first_repo) == 0:
                    assert time.monotonic() < deadline, "the second report never waited"
                    await asyncio.sleep(0.01)
                assert not second.done()
            await conn.commit()
        raced = await asyncio.wait_for(second, 10)
        assert first.created and not raced.created
        assert raced.conversion == first.conversion
        async with first_repo.engine.connect() as conn:
            for table in (conversion_totals, conversion_minutes):
                n = (await conn.execute(select(func.sum(table.c.conversions)))).scalar_one()
                assert n == 1, table.name
            rows = await conn.execute(
                select(func.sum(conversion_breakdowns.c.conversions)).group_by(
                    conversion_breakdowns.c.dimension
                )
            )
            assert [int(n) for (n,) in rows] == [1] * 8
        stats = await first_repo.click_stats(banner.id)
        assert stats is not None
        assert (stats.conversions, dict(stats.revenue)) == (1, {"EUR": "19.90"})
    finally:
        await first_repo.close()
        await second_repo.close()
