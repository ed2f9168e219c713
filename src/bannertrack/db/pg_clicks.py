"""PostgreSQL: a click batch in two statements, in the caller's SQLAlchemy transaction.

A batch used to be eight round trips (BEGIN, the banner check, the visitor upsert, the
click insert, the ``banner_totals`` updates, the minute and breakdown upserts, COMMIT),
each with its fixed cost on both sides; at a few clicks per batch that fixed cost was
most of a click's CPU. Now it is four, whatever the batch:

1. ``BEGIN``, sent by SQLAlchemy when it runs the first statement;
2. the banner check and the visitor upsert: the batch's banners are locked ``FOR KEY
   SHARE`` (all of them, in id order, before any visitor row: the upsert's row filter
   reads them through an InitPlan, which runs once, before its first row), the visitor
   rows are upserted in key order, and both come back in one answer;
3. the raw clicks and every rollup: one ``INSERT ... RETURNING id`` into ``clicks`` with
   the ``banner_totals``, ``click_minutes`` and ``click_breakdowns`` upserts as
   data-modifying CTEs, each fed by its arrays sorted by key;
4. ``COMMIT`` (SQLAlchemy's, on leaving the transaction).

Rare extra statements: moving a visitor's window when it clicked again more than a window
later within the batch, and reading which breakdown values a (banner, day) new to this
process already has.

Lock order, the same for every batch of every worker: banners (key share, which only a
DELETE of the banner waits for), visitor rows by key, then the rollup rows. The rollup
upserts of statement 3 lock their rows in array order (``ORDER BY`` the array position,
arrays sorted by key), one table after the other in the order PostgreSQL runs the
statement's parts, which depends only on its text: the same for every batch.

Statements 2 and 3 take one array per column (``db.pg_bulk``): constant text, prepared
once per connection by asyncpg. Statement 2 runs through SQLAlchemy (``exec_driver_sql``)
so that SQLAlchemy begins its transaction; statement 3 goes to asyncpg directly and is
announced to SQLAlchemy's listeners (the query counter) as ``pg_bulk`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from operator import attrgetter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bannertrack.db.breakdown_writes import BREAKDOWN_TAIL_PG, BreakdownFold, learn
from bannertrack.db.click_tally import BatchCounts
from bannertrack.db.click_writes import (
    MINUTE_TAIL_PG,
    replay_repeats,
    visitor_groups,
    visitor_move,
    visitor_tail_pg,
)
from bannertrack.db.pg_bulk import driver_connection, fetch, insert_sql
from bannertrack.db.sql import micros
from bannertrack.db.tables import (
    banner_totals,
    click_breakdowns,
    click_minutes,
    clicks,
    visitor_clicks,
)
from bannertrack.models import ClickFacts, ClickIn

_NO_FACTS = ClickFacts()

_CLICK_COLUMNS = (
    "banner_id",
    "occurred_at",
    "user_agent",
    "referrer",
    "visitor",
    "bot",
    "bot_reason",
)
_FACT_COLUMNS: tuple[str, ...] = ClickFacts.__struct_fields__  # columns of ``clicks`` too
_GET_CLICK = [attrgetter(name) for name in _CLICK_COLUMNS]
_GET_FACT = [attrgetter(name) for name in _FACT_COLUMNS]

_TOTALS_COLUMNS = (
    "banner_id",
    "total_clicks",
    "valid_clicks",
    "bot_clicks",
    "repeat_clicks",
    "first_click_at",
    "last_click_at",
)
_TOTALS_TAIL = (
    "ON CONFLICT (banner_id) DO UPDATE SET "
    + ", ".join(
        f"{c} = banner_totals.{c} + excluded.{c}"
        for c in ("total_clicks", "valid_clicks", "bot_clicks", "repeat_clicks")
    )
    # LEAST and GREATEST skip NULL: the first click of a banner sets both.
    + ", first_click_at = LEAST(banner_totals.first_click_at, excluded.first_click_at)"
    + ", last_click_at = GREATEST(banner_totals.last_click_at, excluded.last_click_at)"
)
_MINUTE_COLUMNS = ("banner_id", "minute", "clicks", "valid_clicks", "bot_clicks", "repeat_clicks")
_BREAKDOWN_COLUMNS = ("banner_id", "day", "dimension", "value", "clicks", "valid_clicks")


async def write_clicks(
    conn: AsyncConnection, window: int, fold: BreakdownFold, batch: Sequence[ClickIn]
) -> tuple[set[int], list[int], list[bool]]:
    """Store the clicks whose banner exists, with their repeat flags and every rollup.

    Returns the banners that exist, and the ids and repeat flags of the stored clicks
    (the batch's clicks on those banners, in batch order). ``window`` is the repeat
    window in microseconds (0: no repeats).
    """
    groups = visitor_groups(batch) if window > 0 else {}
    keys = sorted(groups)  # the lock order
    answer = await conn.exec_driver_sql(
        _lock_and_upsert_sql(window),
        (
            sorted({c.banner_id for c in batch}),
            [b for b, _ in keys],
            [v for _, v in keys],
            [micros(batch[groups[k][0]].occurred_at) for k in keys],
        ),
    )
    row: Any = answer.one()
    present_ids, banner_ids, visitors, prev = row
    present = set(present_ids or ())
    before = dict(zip(zip(banner_ids or (), visitors or (), strict=True), prev or (), strict=True))
    flags, moved = replay_repeats(window, batch, groups, before)
    if moved:
        await conn.execute(visitor_move(), moved)
    keep: Sequence[ClickIn] = batch
    if any(c.banner_id not in present for c in batch):
        keep = [c for c in batch if c.banner_id in present]
        flags = [f for c, f in zip(batch, flags, strict=True) if c.banner_id in present]
    if not keep:
        return present, [], []
    counts = BatchCounts(keep, flags)
    await learn(conn, fold, counts.pairs())
    args = [
        *_click_arrays(keep, flags),
        *_columns(counts.totals(), len(_TOTALS_COLUMNS)),
        *_columns(counts.minutes(), len(_MINUTE_COLUMNS)),
        *_columns(_breakdown_rows(counts, fold), len(_BREAKDOWN_COLUMNS)),
    ]
    # Ids are drawn from the sequence as rows are inserted, in array order; RETURNING's
    # order is unspecified, so sorting restores the batch's order.
    rows = await fetch(conn, await driver_connection(conn), _write_sql(), args)
    return present, sorted(r[0] for r in rows), flags


def _click_arrays(batch: Sequence[ClickIn], repeats: list[bool]) -> list[list[Any]]:
    facts = [c.facts or _NO_FACTS for c in batch]
    return [
        *(list(map(get, batch)) for get in _GET_CLICK),
        repeats,
        *(list(map(get, facts)) for get in _GET_FACT),
    ]


def _breakdown_rows(counts: BatchCounts, fold: BreakdownFold) -> list[tuple[Any, ...]]:
    return [(*key, n, valid) for key, (n, valid) in sorted(counts.breakdowns(fold).items())]


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[Any]:
    """One sequence per column of ``rows`` (``width`` empty ones when there are none)."""
    return list(zip(*rows, strict=True)) if rows else [()] * width


@lru_cache(maxsize=4)
def _lock_and_upsert_sql(window: int) -> str:
    """Statement 2: lock the batch's banners, upsert its visitor rows (banners that exist
    only). One row of arrays (asyncpg decodes them in C; rows cost Python objects each):
    the banners that exist, and banner, visitor and ``prev_us`` of each visitor row."""
    upsert = insert_sql(
        visitor_clicks,
        ("banner_id", "visitor", "counted_us"),
        visitor_tail_pg(window),
        first=2,
        # An uncorrelated ARRAY(subquery): an InitPlan, run once before the first row,
        # so every banner is locked before any visitor row.
        where="WHERE banner_id = ANY(ARRAY(SELECT id FROM present))",
    )
    return (
        "WITH present AS (SELECT id FROM banners WHERE id = ANY($1::BIGINT[])"
        " ORDER BY id FOR KEY SHARE),"
        f" upserted AS ({upsert})"
        " SELECT (SELECT array_agg(id) FROM present),"
        " array_agg(banner_id), array_agg(visitor), array_agg(prev_us) FROM upserted"
    )


@lru_cache(maxsize=1)
def _write_sql() -> str:
    """Statement 3: the raw clicks (RETURNING id) and the three rollup upserts."""
    first = 1 + len(_CLICK_COLUMNS) + 1 + len(_FACT_COLUMNS)
    totals = insert_sql(banner_totals, _TOTALS_COLUMNS, _TOTALS_TAIL, first=first)
    first += len(_TOTALS_COLUMNS)
    minutes = insert_sql(click_minutes, _MINUTE_COLUMNS, MINUTE_TAIL_PG, first=first)
    first += len(_MINUTE_COLUMNS)
    breakdowns = insert_sql(click_breakdowns, _BREAKDOWN_COLUMNS, BREAKDOWN_TAIL_PG, first=first)
    raw = insert_sql(clicks, (*_CLICK_COLUMNS, "repeat", *_FACT_COLUMNS), "RETURNING id")
    return f"WITH totals AS ({totals}), minutes AS ({minutes}), breakdowns AS ({breakdowns}) {raw}"
