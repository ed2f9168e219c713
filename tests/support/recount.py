"""Recount every rollup and repeat flag from the raw clicks, and say where they differ.

The check of the outage tests and of bench/faults.py: after an outage, a spool and its
replay (or a crash in between), what the rollups say must equal what the raw clicks say,
and each click's repeat flag must be what the repeat rule gives over that visitor's
clicks in time order.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import func, select

from bannertrack.db.click_plan import repeat_step
from bannertrack.db.engine import create_engine
from bannertrack.db.sql import micros
from bannertrack.db.tables import banner_totals, click_breakdowns, click_minutes, clicks
from bannertrack.models import AGENT, AGENT_PARTS, DAY_TOTAL, DIMENSIONS
from bannertrack.timeutil import floor_to

_COLUMN_OF = {d: ("referrer_host" if d == "referrer" else d) for d in DIMENSIONS}


async def recount(
    database_url: str,
    dedup_window: float = 3600.0,
    *,
    strict_order: bool = True,
    order_notes: list[str] | None = None,
) -> list[str]:
    """Every difference between the stored rollups/flags and a recount (empty: none).

    ``strict_order``: each click's flag must be the one a recount in time order gives.
    Several processes replay their own spools in their own order, so with several
    workers only the number of repeats per (banner, visitor) is held to the recount, and
    flags that moved to another click of the same visitor are noted in ``order_notes``.
    """
    order_notes = [] if order_notes is None else order_notes
    engine = create_engine(database_url)
    problems: list[str] = []
    try:
        async with engine.connect() as conn:
            k = clicks.c
            rows = (
                await conn.execute(
                    select(
                        k.id,
                        k.banner_id,
                        k.occurred_at,
                        k.visitor,
                        k.bot,
                        k.repeat,
                        *(k[c] for c in _COLUMN_OF.values()),
                    ).order_by(k.occurred_at, k.id)
                )
            ).all()
            totals = {int(r.banner_id): r for r in await conn.execute(select(banner_totals))}
            minutes = {
                (int(r.banner_id), r.minute): r for r in await conn.execute(select(click_minutes))
            }
            breakdown = Counter[Any]()
            for b, day, dim, n in await conn.execute(
                select(
                    click_breakdowns.c.banner_id,
                    click_breakdowns.c.day,
                    click_breakdowns.c.dimension,
                    func.sum(click_breakdowns.c.clicks),
                ).group_by(
                    click_breakdowns.c.banner_id,
                    click_breakdowns.c.day,
                    click_breakdowns.c.dimension,
                )
            ):
                breakdown[(int(b), day, dim)] = int(n)
    finally:
        await engine.dispose()
    window = int(dedup_window * 1_000_000)
    state: dict[tuple[int, str], int | None] = defaultdict(lambda: None)
    per_banner: dict[int, Counter[str]] = defaultdict(Counter)
    per_minute: dict[tuple[int, Any], Counter[str]] = defaultdict(Counter)
    per_day: Counter[tuple[int, Any, str]] = Counter()
    wrong_flags = 0
    stored_repeats: Counter[tuple[int, str]] = Counter()
    recounted_repeats: Counter[tuple[int, str]] = Counter()
    for r in rows:
        repeat = False
        if not r.bot and r.visitor is not None:
            key = (int(r.banner_id), r.visitor)
            repeat, state[key] = repeat_step(window, state[key], micros(r.occurred_at))
        wrong_flags += repeat != r.repeat
        if r.visitor is not None:
            stored_repeats[(int(r.banner_id), r.visitor)] += bool(r.repeat)
            recounted_repeats[(int(r.banner_id), r.visitor)] += repeat
        kind = "bot" if r.bot else "repeat" if r.repeat else "valid"
        for counter in (
            per_banner[int(r.banner_id)],
            per_minute[(int(r.banner_id), floor_to(r.occurred_at, 60))],
        ):
            counter["total"] += 1
            counter[kind] += 1
        day_key = (int(r.banner_id), r.occurred_at.date())
        per_day[(*day_key, "agent+day")] += 1
        for dimension, column in _COLUMN_OF.items():
            if getattr(r, column) is not None:
                per_day[(*day_key, dimension)] += 1
    if stored_repeats != recounted_repeats:
        differ = sum(
            1
            for k in recounted_repeats | stored_repeats
            if stored_repeats[k] != recounted_repeats[k]
        )
        problems.append(f"repeat counts of {differ} (banner, visitor) pairs differ from a recount")
    if wrong_flags and not strict_order:
        order_notes.append(f"{wrong_flags} repeat flags on other clicks of the same visitor")
    elif wrong_flags:
        problems.append(f"{wrong_flags} repeat flags differ from a recount in time order")
    for banner_id, t in totals.items():
        want = per_banner.get(banner_id, Counter())
        got = (t.total_clicks, t.valid_clicks, t.bot_clicks, t.repeat_clicks)
        if got != (want["total"], want["valid"], want["bot"], want["repeat"]):
            problems.append(f"banner_totals of {banner_id}: {got} != recount {dict(want)}")
    for key, want in per_minute.items():
        m = minutes.get(key)
        got = (
            (0, 0, 0, 0) if m is None else (m.clicks, m.valid_clicks, m.bot_clicks, m.repeat_clicks)
        )
        if got != (want["total"], want["valid"], want["bot"], want["repeat"]):
            problems.append(f"click_minutes {key}: {got} != recount {dict(want)}")
    if len(minutes) != len(per_minute):
        problems.append(f"{len(minutes)} minute rows for {len(per_minute)} minutes with clicks")
    # The AGENT rows and the day-total rows of a (banner, day) sum to its clicks; each
    # other dimension's rows to its clicks with a value there (db/breakdown_writes.py).
    for (banner_id, day, dim), n in list(breakdown.items()):
        if dim in (AGENT, DAY_TOTAL):
            breakdown[(banner_id, day, "agent+day")] += n
    for key, want in per_day.items():
        got = breakdown.get(key, 0)
        if key[2] not in AGENT_PARTS and got != want:
            problems.append(f"breakdown {key}: {got} != recount {want}")
    return problems
