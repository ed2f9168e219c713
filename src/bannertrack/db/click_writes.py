"""The click write path: repeat flags, raw clicks and both rollups, in the caller's transaction.

These run the batch through SQLAlchemy's statements, which work on either dialect; the
repository uses them for in-memory SQLite databases and text with NUL. A SQLite file's
batch is ``db.sqlite_clicks`` and PostgreSQL's ``db.pg_clicks``, both built on the pure
parts here (``visitor_groups``, ``repeat_step``, ``replay_repeats``), the SQL rule of
``visitor_tail_pg`` and the minute upsert's ``MINUTE_TAIL`` (the same text on both).

Repeat detection is one upsert per (banner, visitor) of the batch on ``visitor_clicks``,
handing back the time of the visitor's last valid click as it was before this batch. The
upsert takes the row's lock, so two instances writing clicks of one visitor at once are
serialised by the database, and the second sees the first's click. Rows are always
locked in the same order (visitor rows by key, then rollup rows by banner id), so
concurrent batches cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, case, literal_column, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bannertrack.db.breakdown_writes import BreakdownFold, fact_columns, learn, write_counts
from bannertrack.db.click_tally import BatchCounts
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
    """Which clicks of the batch are repeats; updates ``visitor_clicks`` to match.

    A click is a repeat when its visitor's last valid click on the same banner is
    less than the window away. Bots are never repeats (their flag says enough) and do
    not open a window; clicks without a visitor key (no address) cannot be repeats.
    ``window`` is in microseconds. (PostgreSQL runs the same upsert from ``db.pg_clicks``.)
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
    flags, moved = replay_repeats(window, batch, groups, before)
    if moved:
        await conn.execute(visitor_move(), moved)
    return flags


def visitor_groups(batch: Sequence[ClickIn]) -> dict[tuple[int, str], list[int]]:
    """The clicks that can be repeats, by (banner, visitor): their indexes in batch order.

    Bots are never repeats and clicks without a visitor key cannot be.
    """
    groups: dict[tuple[int, str], list[int]] = {}
    for i, c in enumerate(batch):
        if not c.bot and c.visitor is not None:
            groups.setdefault((c.banner_id, c.visitor), []).append(i)
    return groups


def repeat_step(window: int, state: int | None, t: int) -> tuple[bool, int]:
    """The repeat rule for one click at ``t`` (microseconds): (is it a repeat, new state).

    ``state`` is the start of the visitor's current window on the banner (``counted_us``;
    ``None``: no row yet). The visitor upsert applies the same rule in SQL.
    """
    if state is None:
        return False, t
    if abs(t - state) < window:
        return True, state
    return False, t if t > state else state


def replay_repeats(
    window: int,
    batch: Sequence[ClickIn],
    groups: dict[tuple[int, str], list[int]],
    before: dict[tuple[int, str], int | None],
) -> tuple[list[bool], list[dict[str, Any]]]:
    """The batch's repeat flags from the visitor upsert's answer (``before``: each key's
    ``counted_us`` as it was before the batch), and the rows whose window the upsert left
    behind (parameters of ``visitor_move``).

    The upsert applied the rule to each key's first click; the batch's later clicks are
    replayed here. Keys missing from ``before`` (their banner is gone) are not flagged.
    """
    flags = [False] * len(batch)
    moved = []
    for key, state in before.items():
        stored: int | None = None
        for i in groups[key]:
            flags[i], state = repeat_step(window, state, micros(batch[i].occurred_at))
            if stored is None:
                stored = state  # what the upsert wrote
        if state != stored:  # a visitor clicked again more than a window later
            moved.append({"b_id": key[0], "v_key": key[1], "at": state})
    return flags, moved


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
            # The window moves only with a valid click: one at least a window later.
            "counted_us": case(
                (
                    ins.excluded.counted_us >= v.counted_us + literal_column(str(window)),
                    ins.excluded.counted_us,
                ),
                else_=v.counted_us,
            ),
        },
    ).returning(v.banner_id, v.visitor, v.prev_us)


def visitor_tail_pg(window: int) -> str:
    # The same rule as _visitor_upsert, for db.pg_bulk (SET sees the row as it was).
    return (
        "ON CONFLICT (banner_id, visitor) DO UPDATE SET prev_us = visitor_clicks.counted_us, "
        "counted_us = CASE WHEN excluded.counted_us >= visitor_clicks.counted_us + "
        f"{int(window)} THEN excluded.counted_us ELSE visitor_clicks.counted_us END "
        "RETURNING banner_id, visitor, prev_us"
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
    """Insert the raw clicks and add them to every rollup (totals, minutes, breakdowns);
    returns the ids in batch order.

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

    # Counted as PostgreSQL's two statements count (click_tally), per distinct key; rows in
    # sorted keys: two writers always lock rollup rows in the same order (no deadlock).
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
    return ids


@lru_cache(maxsize=2)
def _minute_upsert(dialect: str) -> Any:
    ins = insert_for(dialect, click_minutes)
    m = click_minutes.c
    return ins.on_conflict_do_update(
        index_elements=[m.banner_id, m.minute],
        set_={name: getattr(m, name) + getattr(ins.excluded, name) for name in MINUTE_COUNTERS},
    )
