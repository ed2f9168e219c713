"""SQLite: a whole click batch as one call into a writer thread with its own connection.

Why. Through SQLAlchemy and aiosqlite a batch cost the event loop's thread (and the GIL)
a statement compilation, parameter processing per row (datetimes through the bind
processors) and a thread hop per statement: on the tracking link that was a large part of
the server's CPU per click (docs/benchmarks.md). Here ``write_batch`` does the batch of
``SqlRepository.record_clicks`` in a plain synchronous function on a stdlib ``sqlite3``
connection, ``BEGIN IMMEDIATE`` ... ``COMMIT``, and the event loop awaits it once.

How. ``SqliteClickWriter`` owns one connection, opened and used only by its single-thread
executor, configured by the engine's own connect listener (``engine._sqlite_pragmas``:
WAL, synchronous=FULL, foreign keys, secure_delete, the busy timeout), so it behaves like
the engine's pooled connections. Every statement takes its rows as one JSON text
(``json_each``; the clicks' ids beside it, see ``_CLICKS``) and hands back at most one row
(``json_group_array``), with fixed SQL text that ``sqlite3`` prepares once per connection.
The reason is the GIL: ``sqlite3`` releases it around every ``sqlite3_step``, and a thread
that gives it up must win it back from a busy event loop, which can take the whole switch
interval (5 ms). Row-by-row ``executemany`` or ``RETURNING`` would pay that once per row;
this pays it a few times per batch, while SQLite parses the JSON and writes with the GIL
released. The one exception is the breakdown upsert, whose rows are short and many (a few
per banner in the batch): SQLite upserts them in about half the time from bound parameters
than through six ``json_extract`` calls a row, so they are bound, still in one statement
of fixed text (``_breakdowns_sql``: a multiple of 8 rows, NULL rows as padding).

What is kept, statement by statement (the SQLAlchemy path in ``click_writes`` and
``breakdown_writes`` writes the same bytes; a test compares the two):

- ``BEGIN IMMEDIATE`` takes the write lock before the batch reads which banners exist,
  so a banner deleted meanwhile is skipped (its clicks answer ``None``), never a failed
  batch. Under the lock the batch is alone, so it reads ``visitor_clicks`` and writes
  the plan's rows (``click_plan.plan_repeats``) instead of an upsert with
  ``RETURNING``; and the click ids are handed out here as AUTOINCREMENT
  would (one above the largest ever used), so no ``RETURNING`` is needed for them.
- Times are stored as SQLAlchemy's SQLite ``DATETIME`` stores ``UtcDateTime`` values
  (naive UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``), days as ``YYYY-MM-DD``.
- Rollups are the plan's (``click_plan.BatchCounts``, as on the other writers): the
  clicks counted once per distinct (banner, minute, facts, kind, placement), and the
  totals, minutes, breakdown and placement rows worked out per such key, not per click;
  the breakdown values are the repository's ``BreakdownFold`` verdicts, asked once per
  (banner, day, facts). Only their rendering is here: stored times, JSON, bound rows.
- Errors surface as the SQLAlchemy path's do, through ``db.errors.map_db_errors``:
  ``sqlite3.OperationalError`` (locked, disk full, read-only, I/O error) means the
  database is unavailable; anything else (a rejected row) is a plain exception, so
  ingest bisects the batch.
- The statements are reported to the engine's ``before_cursor_execute`` listeners
  (the query counter), as ``pg_bulk`` does.

JSON cannot carry a NUL character through SQLite's ``json_extract``: a batch holding one
(the API never passes one, see ``storable``) is answered ``None`` by ``write_batch``
and written by the SQLAlchemy path instead. In-memory databases are private to their
connection, so they keep the SQLAlchemy path too (``SqliteClickWriter.for_engine``).

Longer than 300 lines: the writer thread and its fixed SQL, tuned together on the click
path; the batch's decisions are ``db/click_plan.py``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any, Literal, TypeVar

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from bannertrack.conversions.click_ids import LENGTH
from bannertrack.db.breakdown_writes import BREAKDOWN_TAIL, BreakdownFold, fold_counts
from bannertrack.db.click_plan import BatchCounts, VisitorRow, plan_repeats, visitor_groups
from bannertrack.db.click_writes import MINUTE_TAIL
from bannertrack.db.errors import map_db_errors
from bannertrack.db.tables import CLICK_VALUES, MINUTE_COUNTERS, TOTAL_COUNTERS
from bannertrack.models import NONE_VALUE, OTHER_VALUE, ClickFacts, ClickIn

_encode = msgspec.json.encode
_decode = msgspec.json.decode
_NO_FACTS = msgspec.structs.astuple(ClickFacts())
_FACT_COLUMNS: tuple[str, ...] = ClickFacts.__struct_fields__


def _rows(param: str) -> str:
    """``r``: the JSON rows ``[v0, v1, ...]`` of the array in ``param``, each once.

    Why not ``json_each`` itself: its ``value`` is made again, the row rendered back to
    JSON text, each time the statement names it, so reading N columns did each row's
    work N times (counted with callgrind on SQLite 3.40: a click's 20 columns cost the
    writer thread about a quarter of its CPU a batch of 64, and each character of a row
    20 times over; docs/benchmarks.md). Materialized (SQLite 3.35+, as ``RETURNING``
    elsewhere), each row is made once, and its columns are read from one text whose
    parse SQLite's JSON cache keeps.
    """
    return f"WITH r AS MATERIALIZED (SELECT key, value FROM json_each({param})) "


def _rows_of(n: int) -> str:
    """The columns of ``r``'s rows (``_rows``)."""
    return ", ".join(f"json_extract(r.value, '$[{i}]')" for i in range(n))


def _quoted(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


# The banners of the batch that exist, and the largest click id ever handed out.
_CHECK = (
    "SELECT (SELECT json_group_array(id) FROM banners"
    " WHERE id IN (SELECT value FROM json_each(?))),"
    " max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'clicks'), 0),"
    " coalesce((SELECT max(id) FROM clicks), 0))"
)
_VISITOR_STATE = (
    _rows("?") + "SELECT json_group_array(json_array(v.banner_id, v.visitor, v.counted_us))"
    " FROM r CROSS JOIN visitor_clicks AS v"
    " WHERE v.banner_id = json_extract(r.value, '$[0]')"
    " AND v.visitor = json_extract(r.value, '$[1]')"
)
# prev_us: the row's counted_us before this batch (NULL for a new row), as the upsert of
# click_writes leaves it.
_VISITOR_WRITE = (
    _rows("?") + "INSERT INTO visitor_clicks (banner_id, visitor, counted_us, prev_us)"
    f" SELECT {_rows_of(4)} FROM r WHERE true"
    " ON CONFLICT (banner_id, visitor) DO UPDATE SET"
    " counted_us = excluded.counted_us, prev_us = excluded.prev_us"
)
# Ids numbered from ?1 in array order: one above the largest ever used, as AUTOINCREMENT
# would hand them out (AUTOINCREMENT keeps sqlite_sequence up to date either way).
# The click ids (the last column) are not in the rows' JSON but in ?3, a BLOB of LENGTH
# bytes a row (_click_ids): read by position, they cost SQLite no parse (in the JSON each
# id's 38 characters were parsed on every row). A BLOB because ``substr`` finds a TEXT's
# n-th character by walking the text from its start: every row once more.
assert CLICK_VALUES[-1] == "click_id"
_CLICKS = (
    _rows("?2") + f'INSERT INTO clicks ("id", {_quoted(CLICK_VALUES)})'
    f" SELECT ?1 + r.key, {_rows_of(len(CLICK_VALUES) - 1)},"
    f" nullif(CAST(substr(?3, r.key * {LENGTH} + 1, {LENGTH}) AS TEXT), ?4) FROM r"
)
_NO_CLICK_ID = " " * LENGTH  # a row without a click id in ?3 (no click id is this)
_CLICK_ID = operator.attrgetter("click_id")
_TOTALS = (
    _rows("?")
    + "UPDATE banner_totals SET "
    + ", ".join(
        f"{c} = {c} + json_extract(r.value, '$[{i}]')" for i, c in enumerate(TOTAL_COUNTERS, 1)
    )
    + ", first_click_at = CASE WHEN first_click_at IS NULL"
    " OR first_click_at > json_extract(r.value, '$[5]')"
    " THEN json_extract(r.value, '$[5]') ELSE first_click_at END,"
    " last_click_at = CASE WHEN last_click_at IS NULL"
    " OR last_click_at < json_extract(r.value, '$[6]')"
    " THEN json_extract(r.value, '$[6]') ELSE last_click_at END"
    " FROM r WHERE banner_totals.banner_id = json_extract(r.value, '$[0]')"
)
_MINUTES = (
    _rows("?") + f"INSERT INTO click_minutes (banner_id, minute, {', '.join(MINUTE_COUNTERS)})"
    f" SELECT {_rows_of(6)} FROM r WHERE true {MINUTE_TAIL}"
)
_BREAKDOWNS_KNOWN = (
    "SELECT json_group_array(json_array(banner_id, day, dimension, value))"
    " FROM click_breakdowns WHERE banner_id IN (SELECT value FROM json_each(?))"
    " AND day IN (SELECT value FROM json_each(?)) AND value NOT IN (?, ?)"
)
# The breakdown rows as bound parameters, not JSON (see the module's docstring). The
# statement holds a fixed number of rows, so its text is one of a few (32) that sqlite3
# prepares once: a batch's rows are cut into statements of _BREAKDOWN_SLOTS rows at most,
# each padded with NULL rows (which the WHERE drops) to a multiple of _BREAKDOWN_STEP.
_BREAKDOWN_SLOTS = 256
_BREAKDOWN_STEP = 8
_BREAKDOWN_WIDTH = 6


@cache
def _breakdowns_sql(slots: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * slots)
    return (
        "INSERT INTO click_breakdowns (banner_id, day, dimension, value, clicks, valid_clicks)"
        f" SELECT * FROM (VALUES {values}) WHERE column1 IS NOT NULL {BREAKDOWN_TAIL}"
    )


# A placement's clicks per banner and minute (placement clicks only; db/placements.py).
_PLACEMENTS = (
    _rows("?") + "INSERT INTO placement_minutes"
    " (placement_id, banner_id, minute, impressions, clicks, valid_clicks)"
    f" SELECT {_rows_of(3)}, 0, json_extract(r.value, '$[3]'), json_extract(r.value, '$[4]')"
    " FROM r WHERE true"
    " ON CONFLICT (placement_id, banner_id, minute) DO UPDATE SET"
    " clicks = placement_minutes.clicks + excluded.clicks,"
    " valid_clicks = placement_minutes.valid_clicks + excluded.valid_clicks"
)


def stored_time(value: datetime) -> str:
    """A ``UtcDateTime`` as SQLAlchemy stores it on SQLite: naive UTC, microseconds."""
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # without "+00:00"


@dataclass(slots=True)
class BatchResult:
    """What ``record_clicks`` needs back: ids and flags of the kept clicks, in order."""

    present: set[int]
    ids: list[int]
    repeats: list[bool]


T = TypeVar("T")
Executed = list[tuple[str, tuple[Any, ...]]]  # the statements a batch ran, for listeners


def write_batch(
    conn: sqlite3.Connection,
    batch: Sequence[ClickIn],
    window: int,
    fold: BreakdownFold,
    executed: Executed,
) -> BatchResult | None:
    """Write ``batch`` in one ``BEGIN IMMEDIATE`` transaction; ``None``: not for this path.

    ``conn`` is in autocommit mode (``isolation_level=None``); ``window`` is the dedup
    window in microseconds. On any error the transaction is rolled back and the error
    raised. Long on purpose: the order of the statements is the order of the locks and
    reads the SQLAlchemy path keeps, and reads best in one place.
    """

    def run(sql: str, *params: Any) -> Any:
        executed.append((sql, params))
        return conn.execute(sql, params).fetchone()

    conn.execute("BEGIN IMMEDIATE")
    try:
        wanted = sorted({c.banner_id for c in batch})
        present_json, last_id = run(_CHECK, _text(wanted))
        present = set(_decode(present_json))
        clicks = [c for c in batch if c.banner_id in present]
        if not clicks:
            conn.execute("COMMIT")
            return BatchResult(present, [], [])
        repeats, visitor_rows = _plan_repeats(run, clicks, window)
        times = [stored_time(c.occurred_at) for c in clicks]
        rows = _text([_click_row(*x) for x in zip(clicks, times, repeats, strict=True)])
        if "\\u0000" in rows and _holds_nul(clicks):
            conn.execute("ROLLBACK")  # nothing written yet
            return None
        ids = _click_ids(clicks)
        if ids is False:
            conn.execute("ROLLBACK")  # nothing written yet
            return None
        if visitor_rows:
            run(_VISITOR_WRITE, _text(visitor_rows))
        run(_CLICKS, last_id + 1, rows, ids, _NO_CLICK_ID)
        counts = BatchCounts(clicks, repeats)
        _add_rollups(run, counts, times)
        _add_breakdowns(run, fold, counts)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    # Ids as AUTOINCREMENT hands them out, in batch order (the insert numbers them so).
    return BatchResult(present, list(range(last_id + 1, last_id + 1 + len(clicks))), repeats)


def _text(value: Any) -> str:
    # JSON as text: SQLite 3.45+ would read a BLOB as its binary JSONB.
    return _encode(value).decode()


def _click_row(c: ClickIn, time: str, repeat: bool) -> tuple[Any, ...]:
    facts = _NO_FACTS if c.facts is None else msgspec.structs.astuple(c.facts)
    return (
        c.banner_id,
        time,
        c.user_agent,
        c.referrer,
        c.visitor,
        c.bot,
        c.bot_reason,
        repeat,
        *facts,
        c.placement_id,
        c.signature,
    )


def _click_ids(batch: Sequence[ClickIn]) -> bytes | Literal[False] | None:
    """``_CLICKS``' ?3: the batch's click ids, ``LENGTH`` ASCII bytes each in batch order
    (``_NO_CLICK_ID`` for a click without one); ``None`` when no click has one; ``False``
    when one is not of the link's form (not for this path: the SQLAlchemy path writes it).

    Without a Python loop over the clicks: one held the GIL for longer than the parse it
    spares SQLite took (counted with callgrind, docs/benchmarks.md).
    """
    ids: list[str | None] = list(map(_CLICK_ID, batch))
    blank = ids.count(None)
    if blank == len(ids):
        return None
    if blank:
        ids = [i or _NO_CLICK_ID for i in ids]
    text = "".join(ids)  # type: ignore[arg-type]  # no None is left
    if {*map(len, ids)} != {LENGTH} or ids.count(_NO_CLICK_ID) != blank:  # type: ignore[arg-type]
        return False
    return text.encode() if text.isascii() else False


def _holds_nul(batch: Sequence[ClickIn]) -> bool:
    # The encoded "\u0000" may also be a backslash and "u0000" in a value: look closer.
    for c in batch:
        values = (c.user_agent, c.referrer, c.visitor, c.bot_reason, c.signature)
        facts = () if c.facts is None else msgspec.structs.astuple(c.facts)
        if any(v is not None and "\x00" in v for v in (*values, *facts)):
            return True
    return False


def _plan_repeats(
    run: Any, batch: Sequence[ClickIn], window: int
) -> tuple[list[bool], list[VisitorRow]]:
    """The batch's repeat flags and visitor rows (``click_plan.plan_repeats``).

    The batch holds the write lock, so it reads the visitor rows and writes the plan's
    outcome, where the SQLAlchemy path upserts with ``RETURNING``.
    """
    groups = visitor_groups(batch) if window > 0 else {}
    if not groups:
        return [False] * len(batch), []
    keys = sorted(groups)
    (state_json,) = run(_VISITOR_STATE, _text(keys))
    before: dict[tuple[int, str], int | None] = dict.fromkeys(keys)
    before.update({(b, v): us for b, v, us in _decode(state_json)})
    return plan_repeats(window, batch, groups, before)


def _add_rollups(run: Any, counts: BatchCounts, times: Sequence[str]) -> None:
    """``banner_totals``, ``click_minutes`` and ``placement_minutes``: the plan's rows, in
    key order, with times as they are stored (``times``: each click's, in batch order)."""
    run(_TOTALS, _text(counts.totals(times)))
    stored: dict[datetime, str] = {}  # a batch's minutes are few: each formatted once
    minutes = []
    for b, m, *n in counts.minutes():
        text = stored.get(m) or stored.setdefault(m, stored_time(m))
        minutes.append((b, text, *n))
    run(_MINUTES, _text(minutes))
    placed = [
        (p, b, stored.get(m) or stored_time(m), n, valid)
        for p, b, m, n, valid in counts.placements()
    ]
    if placed:
        run(_PLACEMENTS, _text(placed))


def _add_breakdowns(run: Any, fold: BreakdownFold, counts: BatchCounts) -> None:
    """``click_breakdowns``: the plan's rows (``BatchCounts.breakdowns``), once the fold
    knows the batch's (banner, day) pairs (read here for those new to it)."""
    per = counts.fact_counts()
    missing = fold.missing({(b, day) for b, day, _ in per})
    if missing:
        banner_ids = sorted({b for b, _ in missing})
        day_texts = sorted({d.isoformat() for _, d in missing})
        (known_json,) = run(
            _BREAKDOWNS_KNOWN, _text(banner_ids), _text(day_texts), NONE_VALUE, OTHER_VALUE
        )
        found: dict[tuple[int, date], dict[str, set[str]]] = {p: {} for p in missing}
        for banner_id, day, dimension, value in _decode(known_json):
            admitted = found.get((banner_id, date.fromisoformat(day)))
            if admitted is not None:
                admitted.setdefault(dimension, set()).add(value)
        for pair, admitted in found.items():
            fold.learn(pair, admitted)
    rows = sorted(fold_counts(fold, per).items())
    for start in range(0, len(rows), _BREAKDOWN_SLOTS):
        chunk = rows[start : start + _BREAKDOWN_SLOTS]
        slots = -(-len(chunk) // _BREAKDOWN_STEP) * _BREAKDOWN_STEP
        params: list[Any] = [None] * (slots * _BREAKDOWN_WIDTH)
        i = 0
        for (b, day, dimension, value), (n, valid) in chunk:
            params[i : i + _BREAKDOWN_WIDTH] = b, day.isoformat(), dimension, value, n, valid
            i += _BREAKDOWN_WIDTH
        run(_breakdowns_sql(slots), *params)


class SqliteClickWriter:
    """The click batches of one ``SqlRepository`` on SQLite, written in a thread of their own.

    The connection is opened on first use and closed by ``close()`` (a later batch opens
    it again, as the engine's pool does after ``dispose()``). After an error that says
    the database is unavailable the connection is dropped and the next batch opens a
    fresh one.
    """

    def __init__(
        self, engine: AsyncEngine, connect: tuple[list[Any], dict[str, Any]], fold: BreakdownFold
    ) -> None:
        self._engine = engine
        self._args, self._kwargs = connect
        self._fold = fold
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # used in the executor's thread only

    @classmethod
    def for_engine(cls, engine: AsyncEngine, fold: BreakdownFold) -> SqliteClickWriter | None:
        """A writer for ``engine``'s database; ``None`` when that is not a SQLite file."""
        if engine.dialect.name != "sqlite":
            return None
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        name = str(args[0]) if args else ""
        if name in ("", ":memory:") or name.startswith("file::memory:") or "mode=memory" in name:
            return None  # private to each connection: a second one would not see it
        return cls(engine, (list(args), dict(kwargs)), fold)

    async def record_clicks(self, batch: Sequence[ClickIn], window: int) -> BatchResult | None:
        """Write ``batch`` in the writer thread (``None``: leave it to the SQLAlchemy path)."""
        executed: Executed = []
        loop = asyncio.get_running_loop()
        try:
            with map_db_errors():
                return await loop.run_in_executor(
                    self._thread(), self._write, batch, window, executed
                )
        finally:
            self._tell_listeners(list(executed))

    async def on_connection(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` in the writer's thread, on the connection batches use (opened
        if need be): how a test or a diagnostic reads that connection's own settings."""
        with map_db_errors():
            return await asyncio.get_running_loop().run_in_executor(
                self._thread(), lambda: fn(self._conn or self._open())
            )

    def _thread(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="bannertrack-sqlite-clicks")
        return self._executor

    def _write(
        self, batch: Sequence[ClickIn], window: int, executed: Executed
    ) -> BatchResult | None:
        conn = self._conn or self._open()
        try:
            return write_batch(conn, batch, window, self._fold, executed)
        except (sqlite3.OperationalError, sqlite3.InterfaceError):
            self._drop()  # the next batch starts on a fresh connection
            raise

    def _open(self) -> sqlite3.Connection:
        kwargs = {**self._kwargs, "isolation_level": None, "check_same_thread": True}
        conn: sqlite3.Connection = sqlite3.connect(*self._args, **kwargs)
        try:
            # The engine's own listener: the same pragmas as every pooled connection.
            self._engine.sync_engine.pool.dispatch.connect(conn, None)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _tell_listeners(self, executed: Executed) -> None:
        # These statements bypass SQLAlchemy: tell its listeners (the query counter behind
        # bannertrack_db_queries_total) as if it had run them.
        dispatch = self._engine.sync_engine.dispatch.before_cursor_execute
        for sql, params in executed:
            dispatch(None, None, sql, params, None, False)

    async def close(self) -> None:
        """Close the connection (after the batch in flight, if any) and the thread."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._drop)
        finally:
            executor.shutdown(wait=False)
