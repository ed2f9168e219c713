"""A conversion and its rollups, in one transaction; idempotent per (click id, goal).

The steps, in the caller's transaction (on SQLite it holds the write lock first, so two
reports are serialised whole):

1. the click, by its id (``NotFoundError`` if no click has it, or retention deleted it):
   by the time the id holds and the id (``click_queries``);
2. a conversion of the same (click id, goal) already stored answers as the first did
   (nothing counted), even when the window has closed since;
3. the window rule (``conversions.rules``);
4. ``INSERT ... ON CONFLICT (click_id, goal) DO NOTHING RETURNING id``: of two identical
   reports racing past step 2, the unique constraint lets one insert; the other's insert
   waits for it (PostgreSQL: on the index entry; SQLite: the write lock) and inserts
   nothing, and that report then reads the winner's row and answers it;
5. only the report that inserted adds to ``conversion_totals``, ``conversion_minutes``
   and ``conversion_breakdowns``: counts are exact, whatever the retries.

``record_conversions`` does this for a batch of reports in one transaction (group commit,
``db/conversion_batches.py``): steps 1-4 report by report in (click id, goal) order, then
step 5 once, the batch's rollup rows summed per key and written in key order. Every
transaction so takes its row locks in one global order (conversions by key, then each
rollup by key), so two batches on PostgreSQL wait for each other but never deadlock. Two
identical reports in one batch are adjacent in that order: the second one's step 2 reads
the first one's row, uncommitted but its own transaction's, and answers it.

Just over 300 lines on purpose: the five steps and the one lock order are a single
contract, read and changed together.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Row, Select, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bannertrack.conversions.click_ids import click_window, in_window
from bannertrack.conversions.rules import check_window
from bannertrack.conversions.values import Conversion, ConversionIn, Recorded, amount_text
from bannertrack.db.sql import insert_for
from bannertrack.db.tables import (
    LEGACY_CLICK_ID,
    clicks,
    conversion_breakdowns,
    conversion_minutes,
    conversion_totals,
    conversions,
)
from bannertrack.errors import NotFoundError, OutsideWindowError
from bannertrack.models import DIMENSIONS, NONE_VALUE, ClickFacts
from bannertrack.timeutil import floor_to

NO_PLACEMENT = 0  # conversion_minutes.placement_id of a click from no placement
NO_CURRENCY = ""  # the rollups' currency of a conversion without a value
_FACTS = ClickFacts.__struct_fields__


# What one report in a batch comes to: recorded (201 or 200), or refused before it wrote.
Outcome = Recorded | NotFoundError | OutsideWindowError
_Created = tuple[ConversionIn, Row[Any], int | None]  # the report, its click, its placement


async def record_conversion(
    conn: AsyncConnection, dialect: str, data: ConversionIn, window: timedelta
) -> Recorded:
    """Steps 1-5 of the module docstring for one report; the caller commits."""
    outcome = (await record_conversions(conn, dialect, [(data, window)]))[0]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


async def record_conversions(
    conn: AsyncConnection, dialect: str, batch: Sequence[tuple[ConversionIn, timedelta]]
) -> list[Outcome]:
    """Steps 1-5 for each (report, window) of ``batch``, outcomes in its order; the caller
    commits. Steps 1 and 2 read the whole batch's clicks and stored conversions in a
    statement each (the insert's conflict still decides a race with another transaction).
    A refused report (``NotFoundError``, ``OutsideWindowError``) wrote nothing, so the
    others go on in the same transaction."""
    found = await _clicks(conn, {data.click_id for data, _ in batch})
    firsts = await _stored(conn, {data.click_id for data, _ in batch})
    outcomes: dict[int, Outcome] = {}
    created: list[_Created] = []
    for i in sorted(range(len(batch)), key=lambda i: (batch[i][0].click_id, batch[i][0].goal)):
        data, window = batch[i]
        try:
            outcomes[i] = await _insert(
                conn, dialect, data, window, found.get(data.click_id), firsts, created
            )
        except (NotFoundError, OutsideWindowError) as exc:
            outcomes[i] = exc
    if created:
        await _add_rollups(conn, dialect, created)
    return [outcomes[i] for i in range(len(batch))]


async def _insert(
    conn: AsyncConnection,
    dialect: str,
    data: ConversionIn,
    window: timedelta,
    click: Row[Any] | None,
    firsts: dict[tuple[str, str], Conversion],
    created: list[_Created],
) -> Recorded:
    """Steps 1-4 for ``data`` and its ``click``; ``firsts`` holds the (click id, goal)
    pairs stored (this batch's inserts join it, so a second identical report finds the
    first); a report that inserted joins ``created`` (its rollups are step 5)."""
    if click is None:
        raise NotFoundError("no click has this click_id (unknown, or past retention)")
    pair = (data.click_id, data.goal)
    first = firsts.get(pair)
    if first is not None:
        return Recorded(conversion=first, created=False)
    check_window(click.occurred_at, data.occurred_at, window)
    placement_id = _placement_of(click)
    inserted = (
        await conn.execute(
            _insert_sql(dialect),
            {
                "click_id": data.click_id,
                "goal": data.goal,
                "banner_id": click.banner_id,
                "placement_id": placement_id,
                "value_micros": data.value_micros,
                "currency": data.currency,
                "occurred_at": data.occurred_at,
                "click_at": click.occurred_at,
            },
        )
    ).scalar()
    if inserted is None:  # an identical report won the race: answer with its row
        first = await stored(conn, data)
        assert first is not None, "the conflicting row is committed before our insert returns"
        firsts[pair] = first
        return Recorded(conversion=first, created=False)
    created.append((data, click, placement_id))
    firsts[pair] = _conversion(inserted, data, click.banner_id, placement_id)
    return Recorded(conversion=firsts[pair], created=True)


def click_queries(click_ids: Collection[str]) -> list[Select[Any]]:
    """What finds the clicks ids name: timed ids by their time windows through
    ``ix_clicks_occurred`` (and the ids), legacy ids through the partial index that holds
    only those (``conversions/click_ids.py``); a statement for each kind present."""
    c = clicks.c
    query = select(c.click_id, c.banner_id, c.occurred_at, c.placement_id, *(c[f] for f in _FACTS))
    timed = {i: w for i in click_ids if (w := click_window(i)) is not None}
    legacy = sorted(set(click_ids) - timed.keys())
    queries = []
    if timed:
        spans = [c.occurred_at.between(start, end) for start, end in _merged(timed.values())]
        queries.append(query.where(or_(*spans), c.click_id.in_(sorted(timed))))
    if legacy:
        # The partial index's own predicate, as literal text: both databases use a
        # partial index only for a query that states its condition.
        queries.append(query.where(c.click_id.in_(legacy), LEGACY_CLICK_ID))
    return queries


def _merged(windows: Collection[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """``windows`` in order, overlapping ones joined: ids of one 10 ms share theirs."""
    spans: list[tuple[datetime, datetime]] = []
    for start, end in sorted(windows):
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    return spans


async def _clicks(conn: AsyncConnection, click_ids: Collection[str]) -> dict[str, Row[Any]]:
    rows = [row for q in click_queries(click_ids) for row in await conn.execute(q)]
    # The windows and the ids are matched as sets: a row counts only in its own id's window.
    return {r.click_id: r for r in rows if in_window(r.click_id, r.occurred_at)}


async def _stored(
    conn: AsyncConnection, click_ids: Collection[str]
) -> dict[tuple[str, str], Conversion]:
    """The conversions stored of these clicks, by (click id, goal)."""
    v = conversions.c
    rows = await conn.execute(
        select(
            v.id, v.click_id, v.goal, v.banner_id, v.placement_id, v.value_micros, v.currency,
            v.occurred_at,
        ).where(v.click_id.in_(sorted(click_ids)))
    )  # fmt: skip
    return {(r.click_id, r.goal): _stored_conversion(r) for r in rows}


def _placement_of(click: Row[Any]) -> int | None:
    # The placement whose signed click URL brought the click (NULL: a plain link, or a
    # signature that did not vouch for it: placements/signing.py).
    return None if click.placement_id is None else int(click.placement_id)


async def stored(conn: AsyncConnection, data: ConversionIn) -> Conversion | None:
    """The conversion of ``data``'s (click id, goal), if one is stored."""
    v = conversions.c
    row = (
        await conn.execute(
            select(
                v.id, v.click_id, v.goal, v.banner_id, v.placement_id, v.value_micros,
                v.currency, v.occurred_at,
            ).where(v.click_id == data.click_id, v.goal == data.goal)
        )
    ).first()  # fmt: skip
    return None if row is None else _stored_conversion(row)


def _stored_conversion(row: Any) -> Conversion:  # a Row of the columns selected above
    return Conversion(
        id=int(row.id),
        click_id=row.click_id,
        goal=row.goal,
        banner_id=int(row.banner_id),
        placement_id=None if row.placement_id is None else int(row.placement_id),
        value=None if row.value_micros is None else amount_text(row.value_micros, row.currency),
        currency=row.currency,
        occurred_at=row.occurred_at,
    )


def _conversion(
    conversion_id: int, data: ConversionIn, banner_id: int, placement_id: int | None
) -> Conversion:
    value = None
    if data.value_micros is not None and data.currency is not None:
        value = amount_text(data.value_micros, data.currency)
    return Conversion(
        id=int(conversion_id),
        click_id=data.click_id,
        goal=data.goal,
        banner_id=int(banner_id),
        placement_id=placement_id,
        value=value,
        currency=data.currency,
        occurred_at=data.occurred_at,
    )


@lru_cache(maxsize=2)
def _insert_sql(dialect: str) -> Any:
    v = conversions.c
    return (
        insert_for(dialect, conversions)
        .on_conflict_do_nothing(index_elements=[v.click_id, v.goal])
        .returning(v.id)
    )


async def _add_rollups(conn: AsyncConnection, dialect: str, created: list[_Created]) -> None:
    """Per inserted report one count in the totals and the minutes, and one per dimension
    in the breakdowns (its click's facts, "(none)" where it has no value); summed per
    rollup key over the batch and written in key order (the lock order)."""
    totals: Counter[tuple[Any, ...]] = Counter()
    totals_revenue: Counter[tuple[Any, ...]] = Counter()
    minutes: Counter[tuple[Any, ...]] = Counter()
    minutes_revenue: Counter[tuple[Any, ...]] = Counter()
    breakdowns: Counter[tuple[Any, ...]] = Counter()
    for data, click, placement_id in created:
        banner_id = int(click.banner_id)
        currency = data.currency or NO_CURRENCY
        revenue = data.value_micros or 0
        total = (banner_id, data.goal, currency)
        totals[total] += 1
        totals_revenue[total] += revenue
        minute = (
            banner_id,
            floor_to(data.occurred_at, 60),
            NO_PLACEMENT if placement_id is None else placement_id,
            data.goal,
            currency,
        )
        minutes[minute] += 1
        minutes_revenue[minute] += revenue
        facts = ClickFacts(**{f: click._mapping[f] for f in _FACTS})
        day: date = data.occurred_at.astimezone(UTC).date()
        for by in DIMENSIONS:
            breakdowns[(banner_id, day, by, facts.value(by) or NONE_VALUE)] += 1
    await conn.execute(
        _add(dialect, "totals"),
        [
            dict(zip(_TOTAL_KEY, k, strict=True), conversions=n, revenue_micros=totals_revenue[k])
            for k, n in sorted(totals.items())
        ],
    )
    await conn.execute(
        _add(dialect, "minutes"),
        [
            dict(zip(_MINUTE_KEY, k, strict=True), conversions=n, revenue_micros=minutes_revenue[k])
            for k, n in sorted(minutes.items())
        ],
    )
    await conn.execute(
        _add(dialect, "breakdowns"),
        [
            dict(zip(_BREAKDOWN_KEY, k, strict=True), conversions=n)
            for k, n in sorted(breakdowns.items())
        ],
    )


_TOTAL_KEY = ("banner_id", "goal", "currency")
_MINUTE_KEY = ("banner_id", "minute", "placement_id", "goal", "currency")
_BREAKDOWN_KEY = ("banner_id", "day", "dimension", "value")
_ROLLUPS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "totals": (conversion_totals, ("conversions", "revenue_micros")),
    "minutes": (conversion_minutes, ("conversions", "revenue_micros")),
    "breakdowns": (conversion_breakdowns, ("conversions",)),
}


@lru_cache(maxsize=8)
def _add(dialect: str, which: str) -> Any:
    table, counted = _ROLLUPS[which]
    ins = insert_for(dialect, table)
    return ins.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={name: table.c[name] + ins.excluded[name] for name in counted},
    )
