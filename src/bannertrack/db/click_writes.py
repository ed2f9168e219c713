"""The click batch through SQLAlchemy's statements, in the caller's transaction.

These work on either dialect; the repository uses them for in-memory SQLite databases,
text with NUL and the spool's replays. A SQLite file's batch is ``db.sqlite_clicks`` and
PostgreSQL's ``db.pg_clicks``. All three render the one plan of ``db.click_plan``
(repeat flags, counts per key, rollup rows in key order); the SQL texts shared with
them are the visitor upsert's ``visitor_tail`` and the minute upsert's ``MINUTE_TAIL``.

Repeat detection is one upsert per (banner, visitor) of the batch on ``visitor_clicks``,
handing back the window (``counted_us``) as it was before this batch. The upsert takes
the row's lock, so two instances writing clicks of one visitor at once are serialised
by the database, and the second sees the first's click. Rows are always locked in the
same order (visitor rows by key, then rollup rows by key), so concurrent batches cannot
deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, case, literal_column, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bannertrack.db.breakdown_writes import BreakdownFold, fact_columns, learn, write_counts
from bannertrack.db.click_plan import (
    BatchCounts,
    VisitorRow,
    plan_repeats,
    visitor_groups,
    window_sql,
)
from bannertrack.db.placements import Rollup, add_placement_rollup
from bannertrack.db.sql import insert_for, micros
from bannertrack.db.tables import (
    MINUTE_COUNTERS,
    banner_totals,
    click_minutes,
    clicks,
    visitor_clicks,
)
from bannertrack.models import ClickIn


async def flag_repeats(
    conn: AsyncConnection, dialect: str, window: int, batch: Sequence[ClickIn]
) -> list[bool]:
    """Which clicks of the batch are repeats (``click_plan``); updates ``visitor_clicks``.

    ``window`` is in microseconds. The upsert locks (or creates) each visitor row of the
    batch in key order and applies the rule to the key's first click, handing back the
    window as it was before; ``plan_repeats`` replays every click from there, and a row
    whose window a later click moved is updated.
    """
    if window <= 0:
        return [False] * len(batch)
    groups = visitor_groups(batch)
    if not groups:
        return [False] * len(batch)
    keys = sorted(groups)  # the lock order
    params = [
        {"banner_id": b, "visitor": s, "counted_us": micros(batch[groups[(b, s)][0]].occurred_at)}
        for b, s in keys
    ]
    rows = await conn.execute(_visitor_upsert(dialect, window), params)
    before = {(int(r[0]), r[1]): r[2] for r in rows}
    flags, visitors = plan_repeats(window, batch, groups, before)
    moved = visitor_moves(visitors)
    if moved:
        await conn.execute(visitor_move(), moved)
    return flags


def visitor_moves(rows: Sequence[VisitorRow]) -> list[dict[str, Any]]:
    """``visitor_move``'s parameters: the rows whose window a later click of the batch
    moved past what the upsert (the rule applied to the first click) left."""
    return [
        {"b_id": banner_id, "v_key": visitor, "at": after}
        for banner_id, visitor, after, _, first in rows
        if after != first
    ]


# The hot statements are built once per dialect, not per batch: SQLAlchemy caches their
# compiled form either way, but building the construct and its cache key every batch
# showed in the profile (a few percent of the click path at 4 connections).


@lru_cache(maxsize=8)
def _visitor_upsert(dialect: str, window: int) -> Any:
    ins = insert_for(dialect, visitor_clicks)
    v = visitor_clicks.c
    return ins.on_conflict_do_update(
        index_elements=[v.banner_id, v.visitor],
        set_={
            "prev_us": v.counted_us,
            "counted_us": literal_column(_moved_window(window)),
        },
    ).returning(v.banner_id, v.visitor, v.prev_us)


def _moved_window(window: int) -> str:
    # SET sees the row as it was: the rule with the stored window as its state.
    return window_sql(window, "excluded.counted_us", "visitor_clicks.counted_us")


def visitor_tail(window: int) -> str:
    """The visitor upsert's tail as text, for ``pg_clicks`` (SET sees the row as it was):
    the rule applied to the key's first click, the window before it handed back."""
    return (
        "ON CONFLICT (banner_id, visitor) DO UPDATE SET prev_us = visitor_clicks.counted_us, "
        f"counted_us = {_moved_window(window)} RETURNING banner_id, visitor, prev_us"
    )


# click_minutes' upsert, as text: the same on SQLite and PostgreSQL (pg_clicks, sqlite_clicks).
MINUTE_TAIL = "ON CONFLICT (banner_id, minute) DO UPDATE SET " + ", ".join(
    f"{name} = click_minutes.{name} + excluded.{name}" for name in MINUTE_COUNTERS
)


@lru_cache(maxsize=1)
def visitor_move() -> Any:
    v = visitor_clicks.c
    return (
        update(visitor_clicks)
        .where(v.banner_id == bindparam("b_id"), v.visitor == bindparam("v_key"))
        .values(counted_us=bindparam("at"))
    )


@lru_cache(maxsize=1)
def _click_insert() -> Any:
    # One form for both dialects: the ids are sorted back into the batch's order below.
    return clicks.insert().returning(clicks.c.id)


@lru_cache(maxsize=1)
def _totals_update() -> Any:
    t = banner_totals.c
    return (
        update(banner_totals)
        .where(t.banner_id == bindparam("b_id"))
        .values(
            total_clicks=t.total_clicks + bindparam("n"),
            valid_clicks=t.valid_clicks + bindparam("valid"),
            bot_clicks=t.bot_clicks + bindparam("bots"),
            repeat_clicks=t.repeat_clicks + bindparam("repeats"),
            first_click_at=case(
                (t.first_click_at.is_(None), bindparam("lo")),
                (t.first_click_at > bindparam("lo"), bindparam("lo")),
                else_=t.first_click_at,
            ),
            last_click_at=case(
                (t.last_click_at.is_(None), bindparam("hi")),
                (t.last_click_at < bindparam("hi"), bindparam("hi")),
                else_=t.last_click_at,
            ),
        )
    )


async def insert_clicks(
    conn: AsyncConnection,
    dialect: str,
    fold: BreakdownFold,
    batch: Sequence[ClickIn],
    repeats: Sequence[bool],
) -> list[int]:
    """Insert the raw clicks and add them to every rollup (totals, minutes, breakdowns,
    placements): the plan's rows (``click_plan.BatchCounts``); returns the ids in batch
    order.

    Long on purpose: the raw insert (in batch order on both dialects) and the rollup
    updates in sorted-key lock order belong to one transaction, read best in sequence.
    """
    rows = [
        {
            "banner_id": c.banner_id,
            "occurred_at": c.occurred_at,
            "user_agent": c.user_agent,
            "referrer": c.referrer,
            "visitor": c.visitor,
            "bot": c.bot,
            "bot_reason": c.bot_reason,
            "repeat": repeat,
            **fact_columns(c.facts),
            "placement_id": c.placement_id,
            "signature": c.signature,
            "click_id": c.click_id,
        }
        for c, repeat in zip(batch, repeats, strict=True)
    ]
    # Ids are handed out in row order (SQLite: one writer, AUTOINCREMENT in VALUES order;
    # PostgreSQL: the sequence is drawn as the rows are inserted, in array order), but
    # RETURNING's row order is unspecified: sorting restores the batch's order. Asking
    # SQLAlchemy to keep it would insert row by row on SQLite.
    ids = sorted((await conn.execute(_click_insert(), rows)).scalars())

    # The plan's rows, in sorted keys: two writers lock rollup rows in one order.
    counts = BatchCounts(batch, repeats)
    totals = [
        {"b_id": b, "lo": lo, "hi": hi, "n": n, "valid": valid, "bots": bots, "repeats": rep}
        for b, n, valid, bots, rep, lo, hi in counts.totals()
    ]
    await conn.execute(_totals_update(), totals)
    columns = ("banner_id", "minute", *MINUTE_COUNTERS)
    per_minute = [dict(zip(columns, row, strict=True)) for row in counts.minutes()]
    await conn.execute(_minute_upsert(dialect), per_minute)
    await learn(conn, fold, sorted(counts.pairs()))
    await write_counts(conn, dialect, counts.breakdowns(fold))
    await add_placement_rollup(conn, dialect, placement_rollup(counts))
    return ids


def placement_rollup(counts: BatchCounts) -> Rollup:
    """The plan's placement rows as ``add_placement_rollup`` takes them."""
    return {(p, b, m): [0, n, valid] for p, b, m, n, valid in counts.placements()}


@lru_cache(maxsize=2)
def _minute_upsert(dialect: str) -> Any:
    ins = insert_for(dialect, click_minutes)
    m = click_minutes.c
    return ins.on_conflict_do_update(
        index_elements=[m.banner_id, m.minute],
        set_={name: getattr(m, name) + getattr(ins.excluded, name) for name in MINUTE_COUNTERS},
    )
