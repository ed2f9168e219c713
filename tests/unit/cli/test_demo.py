"""The demo's data reads like a real site's: a placement's clicks follow its weights."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from bannertrack.cli.demo import DemoTally, Placed, generate_clicks
from bannertrack.models import Banner


def _banner(i: int, made: datetime) -> Banner:
    return Banner(
        id=i,
        name=f"b{i}",
        image_url=f"https://cdn.example.com/{i}.png",
        target_url=f"https://shop.example.com/{i}",
        active=True,
        forward_query=False,
        created_at=made,
        updated_at=made,
    )


async def test_clicks_through_a_placement_follow_its_weights() -> None:
    now = datetime(2026, 12, 6, tzinfo=UTC)
    banners = [_banner(i, now - timedelta(days=3)) for i in range(1, 7)]
    # The least popular banners carry the placement's largest weight: shares that followed
    # banner popularity (the demo's mistake once) would come out the other way round.
    placed: Placed = {10: ((banners[5], banners[0]), (9, 1))}
    through: Counter[int] = Counter()
    tally = DemoTally()
    async for batch in generate_clicks(banners, 6000, now, random.Random(3), tally, placed=placed):
        through.update(c.banner_id for c in batch if c.placement_id == 10)
    served = sum(through.values())
    assert served > 2000
    assert abs(through[banners[5].id] / served - 0.9) < 0.03
    assert set(through) == {banners[0].id, banners[5].id}
