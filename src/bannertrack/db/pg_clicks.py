"""PostgreSQL: a click batch in one statement, or two when a visitor clicks twice in it
(or a click comes from a placement).

A batch used to be eight round trips, then four (BEGIN, two statements, COMMIT); each
round trip waits for the worker's busy event loop, and while it waited the transaction
held its row locks (``bench/lock_waits.py`` saw 0.55 backends "idle in transaction").

**One statement** (``write_in_one``), for a batch in which no visitor clicks a banner
twice and no click comes from a placement (nearly all of them), sent to asyncpg outside
any transaction: PostgreSQL runs it as its own transaction and commits it before it
answers, so a batch is one round trip and its locks are held only while PostgreSQL
works. It

1. locks the batch's banners ``FOR KEY SHARE`` in id order (``present``; a banner
   deleted meanwhile drops out, its clicks are not stored);
2. upserts the visitor rows in key order and flags each click a repeat from the row's
   previous window (``flagged``), by the plan's rule rendered in SQL
   (``click_plan.window_sql`` in ``click_writes.visitor_tail``, ``click_plan.repeat_sql``);
3. inserts the raw clicks (``RETURNING id, repeat, banner_id``), and tallies and upserts
   ``banner_totals`` and ``click_minutes`` in SQL, by ``GROUP BY`` over the flagged
   clicks. The ``click_breakdowns`` rows are the plan's (``click_plan.BatchCounts``
   with the repeats unknown: clicks, and clicks that are not bots), sorted by key;
   with them, which rows each of the plan's keys counts in, so that the statement
   takes the batch's repeats, which only it knows, off their valid counts.
   (Tallying them in SQL from a map of (banner, day, facts) to rows cost PostgreSQL about
   a tenth more per batch: the map's join, grouping and text sort.)

The server's ``statement_timeout`` (``db.engine``) ends a statement that waits too long:
it is rolled back, so a batch answered 503 stored nothing.

**Two statements** (``write_in_two``), in one transaction that the caller commits, for
any batch: the visitor upsert's answer comes back to Python, which plans the batch
(``click_plan.plan_repeats`` replays the later clicks, ``click_plan.BatchCounts`` counts
the rollups); a visitor whose window moved within the batch gets one more statement, a
placement's clicks one more (``placement_minutes``, as the SQLAlchemy path writes it).

1. the banner check and the visitor upsert, both answered in one row of arrays;
2. the raw clicks ``RETURNING id`` with the three rollup upserts as data-modifying CTEs,
   each fed by the plan's rows sorted by key.

Both shapes take the same locks in the same order, so they never deadlock each other:
banners (key share, which only a DELETE of the banner waits for), visitor rows by key,
then the rollup rows, table after table in the order PostgreSQL runs the statement's
parts (the same text for every batch), each table's rows by key; breakdown rows sort
``COLLATE "C"`` in SQL, which is Python's code point order of the two-statement batch.
A test writes random batches both ways and compares every table
(``tests/integration/test_pg_one_statement.py``).

Given a NOTIFY (the cache's invalidation for the other instances, ``Bus.carry``), either
shape sends it from its first statement: delivered with the commit, never without it.

The statements take one array per column (``db.pg_bulk``): constant text, prepared once
per connection by asyncpg (a generic plan after five runs). Rare extra statement: reading
which breakdown values a (banner, day) new to this process already has.

What stays PostgreSQL's own, and why: the one statement flags repeats and counts
``banner_totals`` and ``click_minutes`` itself (``GROUP BY``), because the flags exist
only inside it and a second round trip is what it saves. The equivalence test above
pins it to the two statements, which write the plan's rows.

Longer than 300 lines: both statement shapes and their arrays, tuned together on the
click path.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from operator import attrgetter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bannertrack.db.breakdown_writes import BREAKDOWN_TAIL, BreakdownFold, learn
from bannertrack.db.click_plan import (
    VALID,
    BatchCounts,
    VisitorKey,
    plan_repeats,
    repeat_sql,
    visitor_groups,
)
from bannertrack.db.click_writes import (
    MINUTE_TAIL,
    placement_rollup,
    visitor_move,
    visitor_moves,
    visitor_tail,
)
from bannertrack.db.pg_bulk import array_param, driver_connection, fetch, insert_sql
from bannertrack.db.placements import add_placement_rollup
from bannertrack.db.sql import micros
from bannertrack.db.tables import (
    CLICK_VALUES,
    MINUTE_COUNTERS,
    TOTAL_COUNTERS,
    banner_totals,
    click_breakdowns,
    click_minutes,
    clicks,
    visitor_clicks,
)
from bannertrack.models import ClickFacts, ClickIn
from bannertrack.repository import Notify

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
# The last columns of ``clicks``, after the facts (``CLICK_VALUES`` order).
_PLACEMENT_COLUMNS = ("placement_id", "signature")
_GET_FACT = [attrgetter(name) for name in _FACT_COLUMNS]

_TOTALS_COLUMNS = ("banner_id", *TOTAL_COUNTERS, "first_click_at", "last_click_at")
_TOTALS_TAIL = (
    "ON CONFLICT (banner_id) DO UPDATE SET "
    + ", ".join(f"{c} = banner_totals.{c} + excluded.{c}" for c in TOTAL_COUNTERS)
    # LEAST and GREATEST skip NULL: the first click of a banner sets both.
    + ", first_click_at = LEAST(banner_totals.first_click_at, excluded.first_click_at)"
    + ", last_click_at = GREATEST(banner_totals.last_click_at, excluded.last_click_at)"
)
_MINUTE_COLUMNS = ("banner_id", "minute", *MINUTE_COUNTERS)
_BREAKDOWN_COLUMNS = ("banner_id", "day", "dimension", "value", "clicks", "valid_clicks")
# The one-statement batch: clicks carry their time as microseconds (``t_us``) and the
# number of their (banner, day, facts).
_ONE_CLICK_COLUMNS = (
    "banner_id",
    "user_agent",
    "referrer",
    "visitor",
    "bot",
    "bot_reason",
    "placement_id",
    "signature",
)
_GET_ONE_CLICK = [attrgetter(name) for name in _ONE_CLICK_COLUMNS]
# The one-statement batch's breakdown rows come counted (clicks, and clicks that are not
# bots), in lock order; the map of (fact key, row) pairs only serves to take the batch's
# repeats, known in SQL alone, off the rows' valid counts.
_ONE_BREAKDOWN_COLUMNS = ("banner_id", "day", "dimension", "value", "clicks", "human")


async def write_clicks(
    conn: AsyncConnection,
    window: int,
    fold: BreakdownFold,
    batch: Sequence[ClickIn],
    notify: Notify | None = None,
) -> tuple[set[int], list[int], list[bool]]:
    """Store the clicks whose banner exists, with their repeat flags and every rollup.

    Returns the banners that exist, and the ids and repeat flags of the stored clicks
    (the batch's clicks on those banners, in batch order). ``window`` is the repeat
    window in microseconds (0: no repeats). ``conn`` has no transaction open: the one
    statement commits by itself, and the two statements open one that the caller commits.
    ``notify`` (channel, payload) is sent in the batch's transaction: delivered with its
    commit, never without it.
    """
    groups = visitor_groups(batch) if window > 0 else {}
    # The one statement has no placement rollup: a batch with a placement's click is two.
    placed = any(c.placement_id is not None for c in batch)
    if placed or any(len(clicks) > 1 for clicks in groups.values()):
        return await write_in_two(conn, window, fold, batch, groups, notify)
    return await write_in_one(conn, window, fold, batch, groups, notify)


async def write_in_one(
    conn: AsyncConnection,
    window: int,
    fold: BreakdownFold,
    batch: Sequence[ClickIn],
    groups: dict[VisitorKey, list[int]],
    notify: Notify | None = None,
) -> tuple[set[int], list[int], list[bool]]:
    """The batch as one statement, for batches where no visitor clicked a banner twice."""
    keys = sorted(groups)  # the lock order
    t_us = [micros(c.occurred_at) for c in batch]
    counts = BatchCounts(batch, None)  # the repeats are taken off in SQL
    await learn(conn, fold, counts.pairs())
    rows, pairs = _breakdown_rows_counted(counts, fold)
    args = [
        sorted({c.banner_id for c in batch}),
        [b for b, _ in keys],
        [v for _, v in keys],
        [t_us[groups[k][0]] for k in keys],
        *(list(map(get, batch)) for get in _GET_ONE_CLICK),
        t_us,
        *_fact_arrays(batch),
        counts.numbers,
        [c.click_id for c in batch],
        *_columns(rows, len(_ONE_BREAKDOWN_COLUMNS)),
        *_columns(pairs, 2),
        *(notify or ()),
    ]
    sql = _one_sql(window, notify is not None)
    rows = await fetch(conn, await driver_connection(conn), sql, args)
    rows.sort()  # by id: ids are drawn in the batch's order (see write_in_two)
    return {r[2] for r in rows}, [r[0] for r in rows], [r[1] for r in rows]


async def write_in_two(
    conn: AsyncConnection,
    window: int,
    fold: BreakdownFold,
    batch: Sequence[ClickIn],
    groups: dict[VisitorKey, list[int]],
    notify: Notify | None = None,
) -> tuple[set[int], list[int], list[bool]]:
    """The batch as two statements in one transaction (three with a placement's click),
    for any batch: the visitor rows' answer comes back to Python, which plans the rest."""
    keys = sorted(groups)  # the lock order
    answer = await conn.exec_driver_sql(
        _lock_and_upsert_sql(window, notify is not None),
        (
            sorted({c.banner_id for c in batch}),
            [b for b, _ in keys],
            [v for _, v in keys],
            [micros(batch[groups[k][0]].occurred_at) for k in keys],
            *(notify or ()),
        ),
    )
    row: Any = answer.one()
    present_ids, banner_ids, visitors, prev = row
    present = set(present_ids or ())
    before = dict(zip(zip(banner_ids or (), visitors or (), strict=True), prev or (), strict=True))
    flags, visitors = plan_repeats(window, batch, groups, before)
    moved = visitor_moves(visitors)
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
    placed = placement_rollup(counts)
    if placed:
        await add_placement_rollup(conn, "postgresql", placed)
    return present, sorted(r[0] for r in rows), flags


def _click_arrays(batch: Sequence[ClickIn], repeats: list[bool]) -> list[list[Any]]:
    facts = [c.facts or _NO_FACTS for c in batch]
    return [
        *(list(map(get, batch)) for get in _GET_CLICK),
        repeats,
        *(list(map(get, facts)) for get in _GET_FACT),
        [c.placement_id for c in batch],
        [c.signature for c in batch],
        [c.click_id for c in batch],
    ]


def _fact_arrays(batch: Sequence[ClickIn]) -> list[list[Any]]:
    facts = [c.facts or _NO_FACTS for c in batch]
    return [list(map(get, facts)) for get in _GET_FACT]


def _breakdown_rows_counted(
    counts: BatchCounts, fold: BreakdownFold
) -> tuple[list[tuple[Any, ...]], list[tuple[int, int]]]:
    """The batch's breakdown rows, (banner, day, dimension, value, clicks, non-bot
    clicks) sorted by key (the lock order; code points, as ``COLLATE "C"``), and the
    (key number, row index) pairs saying which rows each key of clicks that may be
    repeats counts in (``counts`` has every click that is not a bot as valid)."""
    tally = counts.breakdowns(fold)
    ordered = sorted(tally)
    index = {key: i for i, key in enumerate(ordered, 1)}
    pairs = []
    for (banner_id, minute, facts, kind, _), (number, _) in counts.counts.items():
        if kind != VALID:
            continue  # bots are never repeats
        day = minute.date()
        # The fold's remembered verdicts: the same rows breakdowns() counted in.
        for dimension, value in fold.values((banner_id, day), facts):
            pairs.append((number, index[(banner_id, day, dimension, value)]))
    return [(*key, *tally[key]) for key in ordered], pairs


def _breakdown_rows(counts: BatchCounts, fold: BreakdownFold) -> list[tuple[Any, ...]]:
    return [(*key, n, valid) for key, (n, valid) in sorted(counts.breakdowns(fold).items())]


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[Any]:
    """One sequence per column of ``rows`` (``width`` empty ones when there are none)."""
    return list(zip(*rows, strict=True)) if rows else [()] * width


def _lock_and_upsert(window: int, notify_at: int | None) -> str:
    """``WITH present AS (...), upserted AS (...)``, the start of both batch shapes: the
    batch's banners locked in id order ($1), then its visitor rows upserted ($2-$4).

    ``notify_at``: $n and $n+1 are a NOTIFY's channel and payload, sent by a condition on
    ``present`` that reads no column: PostgreSQL checks it once, before the banners are
    scanned, whatever the batch holds. NOTIFY is delivered with the commit."""
    send = ""
    if notify_at is not None:
        send = f" AND (SELECT pg_notify(${notify_at}, ${notify_at + 1})::TEXT) IS NOT NULL"
    upsert = insert_sql(
        visitor_clicks,
        ("banner_id", "visitor", "counted_us"),
        visitor_tail(window),
        first=2,
        # An uncorrelated ARRAY(subquery): an InitPlan, run once before the first row,
        # so every banner is locked before any visitor row.
        where="WHERE banner_id = ANY(ARRAY(SELECT id FROM present))",
    )
    return (
        f"WITH present AS (SELECT id FROM banners WHERE id = ANY($1::BIGINT[]){send}"
        f" ORDER BY id FOR KEY SHARE), upserted AS ({upsert})"
    )


@lru_cache(maxsize=8)
def _lock_and_upsert_sql(window: int, notify: bool = False) -> str:
    """Statement 2: lock the batch's banners, upsert its visitor rows (banners that exist
    only). One row of arrays (asyncpg decodes them in C; rows cost Python objects each):
    the banners that exist, and banner, visitor and ``prev_us`` of each visitor row. With
    ``notify``, $5 and $6 are a NOTIFY's channel and payload."""
    return (
        _lock_and_upsert(window, 5 if notify else None)
        + " SELECT (SELECT array_agg(id) FROM present),"
        " array_agg(banner_id), array_agg(visitor), array_agg(prev_us) FROM upserted"
    )


@lru_cache(maxsize=1)
def _write_sql() -> str:
    """Statement 3: the raw clicks (RETURNING id) and the three rollup upserts."""
    first = 1 + len(_CLICK_COLUMNS) + 1 + len(_FACT_COLUMNS) + len(_PLACEMENT_COLUMNS) + 1
    totals = insert_sql(banner_totals, _TOTALS_COLUMNS, _TOTALS_TAIL, first=first)
    first += len(_TOTALS_COLUMNS)
    minutes = insert_sql(click_minutes, _MINUTE_COLUMNS, MINUTE_TAIL, first=first)
    first += len(_MINUTE_COLUMNS)
    breakdowns = insert_sql(click_breakdowns, _BREAKDOWN_COLUMNS, BREAKDOWN_TAIL, first=first)
    raw = insert_sql(clicks, CLICK_VALUES, "RETURNING id")
    return f"WITH totals AS ({totals}), minutes AS ({minutes}), breakdowns AS ({breakdowns}) {raw}"


@lru_cache(maxsize=8)
def _one_sql(window: int, notify: bool = False) -> str:
    """The whole batch in one statement (``write_in_one``); see the module docstring.

    With ``notify``, the last two parameters are a NOTIFY's channel and payload
    (``_lock_and_upsert``)."""
    n = 5
    arrays = []
    for name in (*_ONE_CLICK_COLUMNS, "t_us", *_FACT_COLUMNS, "fact_key", "click_id"):
        kind = "BIGINT" if name == "t_us" else "INT" if name == "fact_key" else None
        arrays.append(f"${n}::{kind}[]" if kind else array_param(clicks, name, n))
        n += 1
    row_arrays = []
    for name in _ONE_BREAKDOWN_COLUMNS:
        kind = "BIGINT" if name in ("clicks", "human") else None
        row_arrays.append(f"${n}::{kind}[]" if kind else array_param(click_breakdowns, name, n))
        n += 1
    pair_arrays = f"${n}::INT[], ${n + 1}::INT[]"
    n += 2
    names = ", ".join((*_ONE_CLICK_COLUMNS, "t_us", *_FACT_COLUMNS, "fact_key", "click_id"))
    valid = "count(*) FILTER (WHERE NOT bot AND NOT repeat)"
    per_kind = f"{valid}, count(*) FILTER (WHERE bot), count(*) FILTER (WHERE repeat)"
    quoted = ", ".join(f'"{c}"' for c in CLICK_VALUES)
    return (
        _lock_and_upsert(window, n if notify else None) + ","
        f" input AS (SELECT * FROM unnest({', '.join(arrays)}) WITH ORDINALITY AS u({names}, _pos)"
        "  WHERE banner_id = ANY(ARRAY(SELECT id FROM present))),"
        " flagged AS (SELECT i.*, TIMESTAMPTZ 'epoch' + i.t_us * INTERVAL '1 microsecond'"
        "  AS occurred_at, COALESCE(v.prev_us IS NOT NULL"
        f"  AND {repeat_sql(window, 'i.t_us', 'v.prev_us')}, FALSE) AS repeat"
        "  FROM input i LEFT JOIN upserted v"
        "  ON NOT i.bot AND v.banner_id = i.banner_id AND v.visitor = i.visitor),"
        f" totals AS (INSERT INTO banner_totals ({', '.join(_TOTALS_COLUMNS)})"
        f"  SELECT banner_id, count(*), {per_kind}, min(occurred_at), max(occurred_at)"
        f"  FROM flagged GROUP BY banner_id ORDER BY banner_id {_TOTALS_TAIL}),"
        f" minutes AS (INSERT INTO click_minutes ({', '.join(_MINUTE_COLUMNS)})"
        "  SELECT banner_id, TIMESTAMPTZ 'epoch' + (t_us / 60000000) * INTERVAL '1 minute' AS m,"
        f"  count(*), {per_kind} FROM flagged GROUP BY banner_id, m ORDER BY banner_id, m"
        f"  {MINUTE_TAIL}),"
        # The rows come counted; a repeat (never a bot) comes off the valid count of
        # each row its fact key counts in. Rows of a banner that is gone are dropped.
        " repeats AS (SELECT m.row_no, count(*) AS n FROM flagged f"
        f"  JOIN unnest({pair_arrays}) AS m(fact_key, row_no) USING (fact_key)"
        "  WHERE f.repeat GROUP BY m.row_no),"
        f" breakdowns AS (INSERT INTO click_breakdowns ({', '.join(_BREAKDOWN_COLUMNS)})"
        "  SELECT r.banner_id, r.day, r.dimension, r.value, r.clicks,"
        "  r.human - COALESCE(x.n, 0)"
        f"  FROM unnest({', '.join(row_arrays)}) WITH ORDINALITY"
        f"  AS r({', '.join(_ONE_BREAKDOWN_COLUMNS)}, row_no)"
        "  LEFT JOIN repeats x USING (row_no)"
        "  WHERE r.banner_id = ANY(ARRAY(SELECT id FROM present))"
        # Python sent them sorted by key in code points ("C"), the two-statement
        # batch's order, so that both lock rows in one order.
        f"  ORDER BY r.row_no {BREAKDOWN_TAIL})"
        f" INSERT INTO clicks ({quoted}) SELECT {quoted} FROM flagged ORDER BY _pos"
        " RETURNING id, repeat, banner_id"
    )
