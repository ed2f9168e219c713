"""The breakdown rollup: clicks per (banner, UTC day, dimension, value), in the click's transaction.

Rows. A click adds to one row of the ``AGENT`` dimension, whose value is its device,
browser and OS together (a user agent's three verdicts: a banner-day's clicks come
mostly as a few common triples), and to one row per other dimension it has a value of (country,
referrer, utm tags); no row for "(none)". The ``AGENT`` rows of a (banner, day) sum to
its clicks, so "(none)" of any dimension is worked out on read (``breakdown_queries``):
those clicks less the dimension's rows. A click without referrer or campaign, the
common case, adds to 1 or 2 rows (was 5: a day-total row, device, browser, OS and
country), and a batch's upsert, the breakdowns' whole cost on the click path, is that
much smaller.

Bound. Values are what clients send (referrers, utm tags), so a flood of distinct ones
must not grow the table. Per (banner, day, dimension) at most ``top_n`` values get a row
of their own, first come first served; later new values are counted under "(other)".
"(other)" is always allowed. The ``AGENT`` dimension has no "(other)": a click whose
triple finds it full (or whose triple cannot be one value: too long, or a part that is
one of our markers) counts the older way, in a row counting the day's clicks without an
``AGENT`` row (dimension and value ``DAY_TOTAL``) and in device, browser and OS rows of
their own, each folded as above. Rows written before ``AGENT`` existed are of that kind
too, so the reader sums both. Which values a (banner, day) already has is read from the
table once per process (one query for all the batch's new pairs) and then kept in a
bounded LRU here, so the click path normally adds no read.

The bound is per process: two instances (or workers) that learn of a (banner, day) at
the same time may each admit the values the other has not seen yet, so a (banner, day,
dimension) holds at most ``top_n`` x (processes writing that day) + 1 rows. A process
that starts mid-day re-reads the table first, so restarts do not widen it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from datetime import date
from functools import lru_cache
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bannertrack.db.sql import insert_for
from bannertrack.db.tables import click_breakdowns
from bannertrack.models import (
    AGENT,
    AGENT_PARTS,
    AGENT_SEPARATOR,
    DAY_TOTAL,
    DIMENSIONS,
    NONE_VALUE,
    OTHER_VALUE,
    ClickFacts,
)

_ALWAYS = frozenset({NONE_VALUE, OTHER_VALUE})
_NO_FACTS = ClickFacts()
_NOT_AGENT = tuple(d for d in DIMENSIONS if d not in AGENT_PARTS)
_VALUE_LENGTH: int = click_breakdowns.c.value.type.length  # type: ignore[attr-defined]

# dimension -> values with a row of their own, for one (banner, day)
Admitted = dict[str, set[str]]
# (banner, day, dimension, value) -> [clicks, valid clicks]: a batch's rollup rows
Tally = dict[tuple[int, date, str, str], list[int]]
# (dimension, value): every row a click counts in ("(none)" has none)
Verdict = tuple[tuple[str, str], ...]


class BreakdownFold:
    """Decides, per click, which rollup value it counts under; bounded in memory.

    ``max_pairs`` (banner, day) pairs are remembered, least recently used dropped first:
    a dropped pair is re-read from the table when it shows up again.
    """

    # Verdicts remembered per (banner, day) by ``values``; more distinct facts start afresh.
    max_verdicts = 256

    def __init__(self, top_n: int = 50, max_pairs: int = 1000) -> None:
        self.top_n = top_n
        self.max_pairs = max_pairs
        self._known: OrderedDict[tuple[int, date], Admitted] = OrderedDict()
        self._verdicts: dict[tuple[int, date], dict[ClickFacts | None, Verdict]] = {}

    def admitted(self) -> dict[tuple[int, date], Admitted]:
        """A copy of what is admitted per (banner, day): two folds fed the same clicks in
        the same order must hold the same (the write paths' equivalence tests compare)."""
        return {pair: {d: set(v) for d, v in known.items()} for pair, known in self._known.items()}

    def missing(self, pairs: Iterable[tuple[int, date]]) -> list[tuple[int, date]]:
        return sorted({p for p in pairs if p not in self._known})

    def learn(self, pair: tuple[int, date], admitted: Admitted) -> None:
        known = self._known.setdefault(pair, {})
        for dimension, values in admitted.items():
            known.setdefault(dimension, set()).update(values)
        self._known.move_to_end(pair)
        self._verdicts.pop(pair, None)  # a value folded so far may now have its own row
        while len(self._known) > self.max_pairs:
            dropped, _ = self._known.popitem(last=False)
            self._verdicts.pop(dropped, None)

    def value_for(self, pair: tuple[int, date], dimension: str, value: str | None) -> str:
        if value is None:
            return NONE_VALUE
        if value in _ALWAYS:
            return OTHER_VALUE  # a client cannot pose as one of our markers
        return value if self._admit(pair, dimension, value) else OTHER_VALUE

    def values(self, pair: tuple[int, date], facts: ClickFacts | None) -> Verdict:
        """Every (dimension, value) row a click with ``facts`` counts in (module docstring).

        Remembered per (pair, facts), which is exact: once asked, a value is either
        admitted (and stays so) or folded because the dimension is full (and stays full);
        only ``learn`` can change a verdict (a value folded here may have a row written
        by another process), so it forgets the pair's verdicts. A batch's facts repeat
        heavily, so this turns the per-dimension look-ups into one per distinct key.
        """
        seen = self._verdicts.get(pair)
        if seen is None:
            seen = self._verdicts[pair] = {}
        verdict = seen.get(facts)
        if verdict is None:
            verdict = self._verdict(pair, facts or _NO_FACTS)
            if len(seen) >= self.max_verdicts:
                seen.clear()
            seen[facts] = verdict
        return verdict

    def _verdict(self, pair: tuple[int, date], facts: ClickFacts) -> Verdict:
        agent = agent_value(facts)
        if agent is not None and self._admit(pair, AGENT, agent):
            rows: list[tuple[str, str]] = [(AGENT, agent)]
            dimensions = _NOT_AGENT
        else:
            rows = [(DAY_TOTAL, DAY_TOTAL)]
            dimensions = DIMENSIONS
        for dimension in dimensions:
            value = self.value_for(pair, dimension, facts.value(dimension))
            if value != NONE_VALUE:
                rows.append((dimension, value))
        return tuple(rows)

    def _admit(self, pair: tuple[int, date], dimension: str, value: str) -> bool:
        admitted = self._known.setdefault(pair, {}).setdefault(dimension, set())
        if value in admitted:
            return True
        if len(admitted) >= self.top_n:
            return False
        admitted.add(value)
        return True


def agent_value(facts: ClickFacts) -> str | None:
    """Device, browser and OS as one ``AGENT`` value ("(none)" for a part not known), or
    ``None`` when they cannot be one: a part that is a marker or holds the separator
    (the reader could not split it back), or a value too long for the column."""
    parts = []
    for dimension in AGENT_PARTS:
        part = facts.value(dimension)
        if part is None:
            part = NONE_VALUE
        elif part in _ALWAYS or AGENT_SEPARATOR in part:
            return None
        parts.append(part)
    value = AGENT_SEPARATOR.join(parts)
    return value if len(value) <= _VALUE_LENGTH else None


def fact_columns(facts: ClickFacts | None) -> dict[str, str | None]:
    """The ``clicks`` columns of a click's facts (all NULL when it has none)."""
    return msgspec.structs.asdict(facts or _NO_FACTS)


async def _load(conn: AsyncConnection, fold: BreakdownFold, pairs: list[tuple[int, date]]) -> None:
    """Read which values the table already holds for (banner, day) pairs new to this process."""
    b = click_breakdowns.c
    banner_ids = sorted({p[0] for p in pairs})
    days = sorted({p[1] for p in pairs})
    rows = await conn.execute(
        select(b.banner_id, b.day, b.dimension, b.value).where(
            b.banner_id.in_(banner_ids), b.day.in_(days), b.value.not_in(sorted(_ALWAYS))
        )
    )
    found: dict[tuple[int, date], Admitted] = {p: {} for p in pairs}
    for r in rows:
        admitted = found.get((int(r.banner_id), r.day))
        if admitted is not None:
            admitted.setdefault(r.dimension, set()).add(r.value)
    for pair, admitted in found.items():
        fold.learn(pair, admitted)


async def learn(
    conn: AsyncConnection, fold: BreakdownFold, pairs: Iterable[tuple[int, date]]
) -> None:
    """Make sure the fold knows the (banner, day) pairs: one read for those new to it."""
    missing = fold.missing(pairs)
    if missing:
        await _load(conn, fold, missing)


# (banner, day, facts) -> [clicks, valid clicks], keys in the order of their first click
FactCounts = dict[tuple[int, date, ClickFacts | None], list[int]]


def fold_counts(fold: BreakdownFold, per: FactCounts) -> Tally:
    """Counts per (banner, day, facts) spread over the rollup rows the fold names.

    The fold admits values first come, first served: asked per key in the order of each
    key's first click, it sees each value first at its first click, as it would asked
    click by click, so it admits the same values.
    """
    tally: Tally = {}
    for (banner_id, day, facts), (n, valid) in per.items():
        for dimension, value in fold.values((banner_id, day), facts):
            _add(tally, (banner_id, day, dimension, value), n, valid)
    return tally


def _add(tally: Tally, key: tuple[int, date, str, str], n: int, valid: int) -> None:
    got = tally.get(key)
    if got is None:
        tally[key] = [n, valid]
    else:
        got[0] += n
        got[1] += valid


async def write_counts(conn: AsyncConnection, dialect: str, tally: Tally) -> None:
    """Add counts to their rows; sorted, so two writers lock rows in the same order."""
    if not tally:
        return
    rows = [
        {
            "banner_id": banner_id,
            "day": day,
            "dimension": dimension,
            "value": value,
            "clicks": n,
            "valid_clicks": valid,
        }
        for (banner_id, day, dimension, value), (n, valid) in sorted(tally.items())
    ]
    await conn.execute(_upsert(dialect), rows)


# click_breakdowns' upsert, as text: the same on SQLite and PostgreSQL (pg_clicks,
# sqlite_clicks); ``_upsert`` is the same rule for the SQLAlchemy path.
BREAKDOWN_TAIL = (
    "ON CONFLICT (banner_id, day, dimension, value) DO UPDATE SET "
    "clicks = click_breakdowns.clicks + excluded.clicks, "
    "valid_clicks = click_breakdowns.valid_clicks + excluded.valid_clicks"
)


@lru_cache(maxsize=2)
def _upsert(dialect: str) -> Any:
    """Built once per dialect: building the construct every batch costs on the click path."""
    ins = insert_for(dialect, click_breakdowns)
    b = click_breakdowns.c
    return ins.on_conflict_do_update(
        index_elements=[b.banner_id, b.day, b.dimension, b.value],
        set_={
            "clicks": b.clicks + ins.excluded.clicks,
            "valid_clicks": b.valid_clicks + ins.excluded.valid_clicks,
        },
    )
