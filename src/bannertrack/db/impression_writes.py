"""Impressions: counts per (banner, minute), the placement rollup and the banners' totals.

Written per flush interval by the impression batcher (``clicks/impressions.py``) and by
the spool's replays, in the caller's transaction. Rows are touched in the click writers'
lock order, so an impression flush and a click batch cannot deadlock: the banners (key
share), then ``banner_totals``, then ``placement_minutes`` (``click_plan``'s step 6),
each table's rows in key order. ``impression_minutes`` is this writer's alone.
(``placement_minutes`` used to come before ``banner_totals`` here: a flush and a batch of
placement clicks of the same banner in the same minute then each held the row the other
wanted, and PostgreSQL cancelled the click batch, answered 500.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bannertrack.db.placements import add_placement_rollup, impression_rollup
from bannertrack.db.sql import insert_for
from bannertrack.db.tables import banner_totals, banners, impression_minutes
from bannertrack.models import ImpressionCount
from bannertrack.timeutil import floor_to


async def add_impressions(
    conn: AsyncConnection, dialect: str, counts: Sequence[ImpressionCount]
) -> None:
    """Add impression counts to their minutes, the placement rollup and the banners'
    totals, in the caller's transaction; counts of banners that are gone are dropped."""
    merged: Counter[tuple[int, datetime]] = Counter()
    for c in counts:
        if c.count > 0:
            merged[(c.banner_id, floor_to(c.minute, 60))] += c.count
    if not merged:
        return
    wanted = sorted({b for b, _ in merged})
    exists = select(banners.c.id).where(banners.c.id.in_(wanted)).order_by(banners.c.id)
    if dialect == "postgresql":
        exists = exists.with_for_update(read=True, key_share=True)  # FOR KEY SHARE
    present = set((await conn.execute(exists)).scalars())
    rows = [(k, n) for k, n in sorted(merged.items()) if k[0] in present]
    if not rows:
        return
    ins = insert_for(dialect, impression_minutes)
    im = impression_minutes.c
    await conn.execute(
        ins.on_conflict_do_update(
            index_elements=[im.banner_id, im.minute],
            set_={"impressions": im.impressions + ins.excluded.impressions},
        ),
        [{"banner_id": b, "minute": m, "impressions": n} for (b, m), n in rows],
    )
    per_banner: Counter[int] = Counter()
    for (b, _), n in rows:
        per_banner[b] += n
    t = banner_totals.c
    await conn.execute(
        update(banner_totals)
        .where(t.banner_id == bindparam("b_id"))
        .values(impressions=t.impressions + bindparam("n")),
        [{"b_id": b, "n": n} for b, n in sorted(per_banner.items())],
    )
    # After banner_totals, never before: the click writers' order (module docstring).
    rollup = impression_rollup(
        (c.placement_id, c.banner_id, c.minute, c.count) for c in counts if c.banner_id in present
    )
    await add_placement_rollup(conn, dialect, rollup)
