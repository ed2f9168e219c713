"""A click batch's plan, written once for every writer (pure: no I/O, no SQL execution).

Every writer (``sqlite_clicks`` on a SQLite file, ``click_writes`` through SQLAlchemy,
``pg_clicks`` on PostgreSQL) writes a batch in the same steps; the decisions are made
here and the writers only read what the plan needs and render its rows in their SQL:

1. check banners: the writer reads which banners exist; clicks of the others are dropped;
2. flag repeats: from each (banner, visitor)'s window as it was before the batch
   (``visitor_groups`` names the keys, the writer reads or locks their rows),
   ``plan_repeats`` gives each click's flag and each visitor row's new state;
3. insert the raw clicks with their flags;
4. count per key: ``BatchCounts``, one dictionary update per click, the rest per key;
5. fold breakdowns: ``BatchCounts.breakdowns`` once the fold knows the batch's
   (banner, day) pairs (``pairs``; the writer reads those new to it);
6. upsert the rollups in key order (the lock order: two writers never deadlock):
   ``totals``, ``minutes``, the breakdown rows sorted, ``placements``.

The lock order, PostgreSQL's (SQLite has one write lock): every writer that takes row
locks on these tables takes them in this order, each table's rows by key, and skips
what it does not touch, so no two of them can deadlock:

    banners (FOR KEY SHARE) -> visitor_clicks -> banner_totals -> click_minutes ->
    click_breakdowns -> placement_minutes

Who: the click batches (all three writers, the spool's replays), the impression flush
(``impression_minutes``, its own, before ``banner_totals``), a banner's delete (the
banner first: the others wait there). Conversions lock only their own tables
(``conversion_writes``'s order); a placement's writes take ``placements`` and
``placement_banners``, which no click takes, before ``placement_minutes``; retention
skips the visitor rows a batch holds (``SKIP LOCKED``); an in-doubt replay waits for a
running write one banner at a time, holding nothing else (``db.replay``).
``tests/integration/test_pg_deadlock.py`` and ``test_pg_batch.py`` hold a writer at a
lock and probe the next one with ``NOWAIT``.

The repeat rule is ``repeat_step``. PostgreSQL's one-statement batch applies it in SQL
(one round trip: the flags are known only in the statement), from ``window_sql`` and
``repeat_sql`` below, the rule's one SQL rendering; a test evaluates both against
``repeat_step``, and ``tests/integration/test_pg_one_statement.py`` compares that
statement's tables with the plan's.

Counting. A batch is counted by (banner, minute, facts, kind, placement): the facts of a
banner's clicks are a few values repeated many times (one struct per agent, country and
referrer), so a batch of hundreds of clicks has a few dozen keys, and the per-dimension
work is done once per key. The fold (``BreakdownFold``) admits values first come, first
served; keys are kept in the order of their first click, so the values reach the fold
in the order of their first click, as they did when it was asked click by click.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar, overload

from bannertrack.db.breakdown_writes import BreakdownFold, FactCounts, Tally, fold_counts
from bannertrack.db.sql import micros
from bannertrack.models import ClickFacts, ClickIn

# What a click counts as: every click is exactly one of these.
VALID, REPEAT, BOT = 0, 1, 2

VisitorKey = tuple[int, str]  # banner, visitor
# banner, UTC minute, facts, kind, placement
Key = tuple[int, datetime, ClickFacts | None, int, int | None]
_K = TypeVar("_K", bound=Hashable)
_T = TypeVar("_T")
# Day 1 of toordinal(), in UTC: whole-number minutes count from a day before it.
_DAY_ONE = datetime(1, 1, 1, tzinfo=UTC)


# -- the repeat rule -------------------------------------------------------------------


def repeat_step(window: int, state: int | None, t: int) -> tuple[bool, int]:
    """The repeat rule for one click at ``t`` (microseconds): (is it a repeat, new state).

    ``state`` is the start of the visitor's current window on the banner (the row's
    ``counted_us``; ``None``: no row yet). A click less than ``window`` from it is a
    repeat; a valid click at least a window later opens a new window.
    """
    if state is None:
        return False, t
    if abs(t - state) < window:
        return True, state
    return False, t if t >= state + window else state


def repeat_sql(window: int, t: str, state: str) -> str:
    """``repeat_step``'s flag in SQL (``state`` not NULL): ``t`` and ``state`` are SQL
    expressions of microseconds."""
    return f"abs({t} - {state}) < {int(window)}"


def window_sql(window: int, t: str, state: str) -> str:
    """``repeat_step``'s new state in SQL (``state`` not NULL)."""
    return f"CASE WHEN {t} >= {state} + {int(window)} THEN {t} ELSE {state} END"


def visitor_groups(batch: Sequence[ClickIn]) -> dict[VisitorKey, list[int]]:
    """The clicks that can be repeats, by (banner, visitor): their indexes in batch order.

    Bots are never repeats (their flag says enough) and do not open a window; clicks
    without a visitor key (no address) cannot be repeats.
    """
    groups: dict[VisitorKey, list[int]] = {}
    for i, c in enumerate(batch):
        if not c.bot and c.visitor is not None:
            groups.setdefault((c.banner_id, c.visitor), []).append(i)
    return groups


# One ``visitor_clicks`` row as the batch leaves it: banner, visitor, the window's start
# after the batch (``counted_us``), before it (``prev_us``; ``None``: a new row), and
# after the batch's first click (what one upsert with the rule leaves). A plain tuple:
# a NamedTuple cost a microsecond a row on the click path.
VisitorRow = tuple[int, str, int, int | None, int]


def plan_repeats(
    window: int,
    batch: Sequence[ClickIn],
    groups: Mapping[VisitorKey, list[int]],
    before: Mapping[VisitorKey, int | None],
) -> tuple[list[bool], list[VisitorRow]]:
    """Each click's repeat flag, and the visitor rows in key order (the lock order).

    ``before``: each key's ``counted_us`` before the batch (``None``: no row). Keys of
    ``groups`` missing from ``before`` are skipped: not flagged, no row (the writer
    found their banner gone).
    """
    flags = [False] * len(batch)
    rows = []
    for key in sorted(groups):
        if key not in before:
            continue
        old = state = before[key]
        first: int | None = None
        for i in groups[key]:
            flags[i], state = repeat_step(window, state, micros(batch[i].occurred_at))
            if first is None:
                first = state
        assert state is not None and first is not None  # every group has a click
        rows.append((key[0], key[1], state, old, first))
    return flags, rows


# -- counting ----------------------------------------------------------------------------


class BatchCounts:
    """The clicks of a batch by (banner, minute, facts, kind, placement), numbered in the
    order of their first click, and each click's key number.

    ``repeats=None``: the flags are not known here (PostgreSQL's one statement takes the
    repeats off in SQL); every click that is not a bot then counts as valid.
    """

    __slots__ = ("batch", "counts", "numbers")

    def __init__(self, batch: Sequence[ClickIn], repeats: Sequence[bool] | None) -> None:
        # Keyed by the UTC minute as a whole number (days since year 1 and minute of the
        # day) while counting: a datetime per click, from replace() or floor_to, cost
        # several times more, and timestamp() twice this. Whole datetimes per key after.
        # The loop is the plan's only per-click work: names are bound to locals.
        per: dict[tuple[int, int, ClickFacts | None, int, int | None], list[int]] = {}
        numbers: list[int] = []
        get, number = per.get, numbers.append
        flags = repeats if repeats is not None else [False] * len(batch)
        for click, repeat in zip(batch, flags, strict=True):
            t = click.occurred_at
            if t.tzinfo is not UTC:
                t = t.astimezone(UTC)
            key = (
                click.banner_id,
                t.toordinal() * 1440 + t.hour * 60 + t.minute,
                click.facts,
                BOT if click.bot else REPEAT if repeat else VALID,
                click.placement_id,
            )
            got = get(key)
            if got is None:
                got = per[key] = [len(per), 0]
            got[1] += 1
            number(got[0])
        minute = {m: _DAY_ONE + timedelta(minutes=m - 1440) for m in {key[1] for key in per}}
        self.counts: dict[Key, list[int]] = {
            (b, minute[m], facts, kind, p): got for (b, m, facts, kind, p), got in per.items()
        }
        self.numbers = numbers
        self.batch = batch

    def pairs(self) -> set[tuple[int, date]]:
        """The (banner, UTC day) pairs of the batch."""
        return {(key[0], key[1].date()) for key in self.counts}

    @overload
    def totals(self) -> list[tuple[int, int, int, int, int, datetime, datetime]]: ...

    @overload
    def totals(self, stamps: Sequence[_T]) -> list[tuple[int, int, int, int, int, _T, _T]]: ...

    def totals(
        self, stamps: Sequence[Any] | None = None
    ) -> list[tuple[int, int, int, int, int, Any, Any]]:
        """(banner, clicks, valid, bots, repeats, first, last), by banner (the lock order).

        ``first`` and ``last`` are click times, or ``stamps`` of those clicks: the
        writer's own form of each click's time, in batch order (SQLite's stored text,
        which it has made for the raw rows already).
        """
        per: dict[int, list[int]] = {}
        for (b, _, _, kind, _), (_, n) in self.counts.items():
            _add(per, b, kind, n)
        times = stamps if stamps is not None else [c.occurred_at for c in self.batch]
        spans = self._spans()
        out = []
        for b, c in sorted(per.items()):
            first, last = spans[b]
            total = c[0] + c[1] + c[2]
            out.append((b, total, c[VALID], c[BOT], c[REPEAT], times[first], times[last]))
        return out

    def _spans(self) -> dict[int, list[int]]:
        """The indexes of each banner's first and last click (only ``totals`` needs them)."""
        spans: dict[int, list[int]] = {}
        batch = self.batch
        for i, click in enumerate(batch):
            t = click.occurred_at
            span = spans.get(click.banner_id)
            if span is None:
                spans[click.banner_id] = [i, i]
            elif t < batch[span[0]].occurred_at:
                span[0] = i
            elif t > batch[span[1]].occurred_at:
                span[1] = i
        return spans

    def minutes(self) -> list[tuple[int, datetime, int, int, int, int]]:
        """(banner, minute, clicks, valid, bots, repeats), by (banner, minute)."""
        per: dict[tuple[int, datetime], list[int]] = {}
        for (b, minute, _, kind, _), (_, n) in self.counts.items():
            _add(per, (b, minute), kind, n)
        return [
            (b, m, n[0] + n[1] + n[2], n[VALID], n[BOT], n[REPEAT])
            for (b, m), n in sorted(per.items())
        ]

    def fact_counts(self) -> FactCounts:
        """(banner, UTC day, facts) -> [clicks, valid], in the order of each key's first
        click (the order the fold must be asked in)."""
        per: FactCounts = {}
        for (b, minute, facts, kind, _), (_, n) in self.counts.items():
            key = (b, minute.date(), facts)
            counts = per.get(key)
            if counts is None:
                counts = per[key] = [0, 0]
            counts[0] += n
            if kind == VALID:
                counts[1] += n
        return per

    def breakdowns(self, fold: BreakdownFold) -> Tally:
        """(banner, day, dimension, value) -> [clicks, valid]; the fold must know the pairs."""
        return fold_counts(fold, self.fact_counts())

    def placements(self) -> list[tuple[int, int, datetime, int, int]]:
        """(placement, banner, minute, clicks, valid) of the placement clicks, by key."""
        per: dict[tuple[int, int, datetime], list[int]] = {}
        for (b, minute, _, kind, p), (_, n) in self.counts.items():
            if p is None:
                continue
            got = per.get((p, b, minute))
            if got is None:
                got = per[(p, b, minute)] = [0, 0]
            got[0] += n
            if kind == VALID:
                got[1] += n
        return [(p, b, m, n, valid) for (p, b, m), (n, valid) in sorted(per.items())]


def _add(per: dict[_K, list[int]], key: _K, kind: int, n: int) -> None:
    counts = per.get(key)
    if counts is None:
        counts = per[key] = [0, 0, 0]
    counts[kind] += n
