"""Many reports at once, group-committed, on SQLite and PostgreSQL: every one exact.

Thirty-eight reports start together through two repositories (two processes' worth of batches
racing on the database): 12 distinct (click id, goal) pairs, each sent three times, one
unknown click, one outside the window. Each pair counts once in every rollup, its
reports answer the same conversion (one 201, the rest 200), and the refused reports
refuse only themselves.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from tests.support.banners import tagged_banner

from bannertrack.conversions.click_ids import new_click_id
from bannertrack.conversions.values import ConversionIn, Recorded
from bannertrack.db.repository import SqlRepository
from bannertrack.db.tables import conversion_breakdowns, conversion_minutes, conversion_totals
from bannertrack.errors import NotFoundError, OutsideWindowError
from bannertrack.models import DIMENSIONS, ClickIn

WINDOW = timedelta(days=30)


async def test_concurrent_batches_count_each_pair_once(database_url: str) -> None:
    repos = [SqlRepository.from_url(database_url) for _ in range(2)]
    try:
        banner = await tagged_banner(repos[0])
        now = datetime.now(UTC)
        old = now - timedelta(days=31)
        ids = [new_click_id(now + timedelta(microseconds=i)) for i in range(6)]
        stale = new_click_id(old)
        await repos[0].record_clicks(
            [
                *(
                    ClickIn(
                        banner_id=banner.id, occurred_at=now + timedelta(microseconds=i), click_id=c
                    )
                    for i, c in enumerate(ids)
                ),
                ClickIn(banner_id=banner.id, occurred_at=old, click_id=stale),
            ]
        )
        pairs = [(c, goal) for c in ids for goal in ("sale", "signup")]
        reports = [p for p in pairs for _ in range(3)]
        reports += [(new_click_id(now), "sale"), (stale, "sale")]

        def data(click_id: str, goal: str) -> ConversionIn:
            return ConversionIn(
                click_id=click_id,
                goal=goal,
                value_micros=1_500_000,
                currency="EUR",
                occurred_at=now + timedelta(seconds=1),
            )

        answers = await asyncio.gather(
            *(
                repos[i % 2].record_conversion(data(c, g), WINDOW)
                for i, (c, g) in enumerate(reports)
            ),
            return_exceptions=True,
        )
        assert isinstance(answers[-2], NotFoundError)
        assert isinstance(answers[-1], OutsideWindowError)
        recorded = answers[:-2]
        assert all(isinstance(a, Recorded) for a in recorded), [
            repr(a) for a in recorded if not isinstance(a, Recorded)
        ]
        by_pair: dict[tuple[str, str], list[Recorded]] = {}
        for pair, answer in zip(reports, recorded, strict=False):
            assert isinstance(answer, Recorded)
            by_pair.setdefault(pair, []).append(answer)
        assert len(by_pair) == 12
        for pair, got in by_pair.items():
            assert sum(a.created for a in got) == 1, pair
            assert len({a.conversion for a in got}) == 1, pair  # the same conversion
        async with repos[0].engine.connect() as conn:
            for table in (conversion_totals, conversion_minutes):
                n, micros = (
                    await conn.execute(
                        select(func.sum(table.c.conversions), func.sum(table.c.revenue_micros))
                    )
                ).one()
                assert (n, micros) == (12, 12 * 1_500_000), table.name
            per = Counter(
                dict(
                    (
                        await conn.execute(
                            select(
                                conversion_breakdowns.c.dimension,
                                func.sum(conversion_breakdowns.c.conversions),
                            ).group_by(conversion_breakdowns.c.dimension)
                        )
                    ).all()
                )
            )
            assert per == dict.fromkeys(DIMENSIONS, 12)
    finally:
        for repo in repos:
            await repo.close()
