"""The local spool: click (and impression) batches kept on this instance's disk while the
database cannot take them, until ``clicks/replay.py`` stores them there exactly once.

The store is SQLite in WAL mode with ``synchronous=FULL``: a batch is acknowledged only
after its INSERT has committed and been fsync'd, so "acknowledged" means "durable on this
instance's disk; in the database once it answers". One transaction per batch, not per
click, so an outage costs one fsync per batch the writer forms.

Each process claims a file of its own in ``directory``: ``spool-N.db`` for the lowest N
whose lock file ``spool-N.lock`` it can lock (``flock``, exclusive, non-blocking). The
lock lives as long as the process, so no two live processes share a spool, and a process
that died (SIGKILL included; the kernel drops its locks) leaves its file to the next
process that starts, which replays it.

A batch row holds its idempotency key (replayed in the database's own transaction, see
``db/replay.py``), its kind, whether a live write of it may have committed
(``in_doubt``), when it was spooled and how many clicks or impressions it holds; the
payload is the list of ``ClickIn`` / ``ImpressionCount`` as msgpack. The spool is bounded
by ``max_bytes`` of payload: a batch that does not fit raises ``SpoolFullError`` (503, as
without a spool). All SQLite work runs on one thread of its own, never on the event loop.

``hold(key, task)`` parks a live write that was still running when its batch was spooled:
the replay leaves that batch alone until the write has ended; a write that committed
removes the batch (it is in the database), one that failed leaves it in doubt.

Long on purpose (about 380 lines): the file, its lock, its in-memory index of what it
holds and the thread that touches it are one thing; split, each half would reach into the
other's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

from bannertrack.errors import UnavailableError
from bannertrack.models import ClickIn, ImpressionCount

log = logging.getLogger("bannertrack.clicks.spool")

Kind = Literal["clicks", "impressions"]
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    in_doubt INTEGER NOT NULL,
    created REAL NOT NULL,
    items INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    seq INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    items INTEGER NOT NULL,
    payload BLOB NOT NULL,
    error TEXT NOT NULL
);
"""
_MAX_FILES = 256

_encode = msgspec.msgpack.Encoder().encode


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One transaction, one commit, one fsync. The connection is in autocommit mode
    (``isolation_level=None``), where ``with db:`` opens none: each statement commits on
    its own, so removing a replayed run of 2,000 batches took 2,000 fsyncs (2.3 s on this
    disk) while every click spooled meanwhile waited behind it on the spool's thread."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


_clicks = msgspec.msgpack.Decoder(list[ClickIn])
_impressions = msgspec.msgpack.Decoder(list[ImpressionCount])


class SpoolFullError(UnavailableError):
    code = "spool_full"


@dataclass(frozen=True, slots=True)
class SpooledBatch:
    seq: int
    key: str
    kind: Kind
    in_doubt: bool
    created: float
    items: int
    payload: bytes

    def clicks(self) -> list[ClickIn]:
        return _clicks.decode(self.payload)

    def impressions(self) -> list[ImpressionCount]:
        return _impressions.decode(self.payload)


@dataclass(slots=True)
class _Row:
    key: str
    kind: Kind
    in_doubt: bool
    created: float
    items: int
    size: int


class Spool:
    def __init__(
        self, directory: str | Path, *, max_bytes: int, clock: Callable[[], float] = time.time
    ) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self.directory = Path(directory).expanduser()
        self.max_bytes = max_bytes
        self._clock = clock
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bannertrack-spool")
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self.path: Path | None = None
        # What the file holds, in spool order (seq): counts for /healthz and /metrics
        # without a query. Changed on the event loop only, after the thread's commit.
        self._rows: dict[int, _Row] = {}
        self._keys: dict[str, int] = {}
        self._limbo: dict[str, asyncio.Task[Any]] = {}
        self._settling: set[asyncio.Task[None]] = set()
        self.bytes = 0
        self.spooled_clicks = 0  # since start: clicks acknowledged from the spool
        self.rejected = 0

    # --- state, read without the thread -------------------------------------------------

    @property
    def batches(self) -> int:
        return len(self._rows)

    @property
    def clicks(self) -> int:
        return sum(r.items for r in self._rows.values() if r.kind == "clicks")

    @property
    def impressions(self) -> int:
        return sum(r.items for r in self._rows.values() if r.kind == "impressions")

    def oldest_age(self) -> float:
        """Seconds since the oldest batch still spooled was written (0 when empty)."""
        for row in self._rows.values():
            return max(0.0, self._clock() - row.created)
        return 0.0

    def held(self, key: str) -> bool:
        return key in self._limbo

    # --- life ---------------------------------------------------------------------------

    async def open(self) -> None:
        if self._db is None:
            await self._run(self._open)
            if self._rows:
                log.warning(
                    "spool %s holds %d batches (%d clicks) from an earlier run: replaying",
                    self.path,
                    self.batches,
                    self.clicks,
                )

    async def close(self) -> None:
        for task in list(self._limbo.values()):
            task.cancel()
        if self._db is not None:
            await self._run(self._close)
        self._thread.shutdown(wait=True)

    # --- writes -------------------------------------------------------------------------

    async def append_clicks(self, clicks: Sequence[ClickIn], *, in_doubt: bool) -> str:
        key = await self._append("clicks", _encode(list(clicks)), len(clicks), in_doubt)
        self.spooled_clicks += len(clicks)
        return key

    async def append_impressions(self, counts: Sequence[ImpressionCount]) -> str:
        return await self._append(
            "impressions", _encode(list(counts)), sum(c.count for c in counts), False
        )

    def hold(self, key: str, write: asyncio.Task[Any]) -> None:
        """Leave ``key`` alone while ``write``, a live write of its batch, still runs."""
        self._limbo[key] = write
        write.add_done_callback(lambda task: self._settle(key, task))

    async def oldest(self) -> SpooledBatch | None:
        seq = next(iter(self._rows), None)
        if seq is None:
            return None
        return await self._run(lambda: self._read(seq))

    async def oldest_run(self, max_items: int) -> list[SpooledBatch]:
        """The oldest batch, and with it the click batches right after it that are
        neither in doubt nor held, up to ``max_items`` clicks: replayed together."""
        seqs: list[int] = []
        items = 0
        for seq, row in self._rows.items():
            if seqs:
                first = self._rows[seqs[0]]
                if (
                    first.kind != "clicks"
                    or first.in_doubt
                    or row.kind != "clicks"
                    or row.in_doubt
                    or row.key in self._limbo
                    or items + row.items > max_items
                ):
                    break
            seqs.append(seq)
            items += row.items
        if not seqs:
            return []

        def read() -> list[SpooledBatch]:
            return [b for b in map(self._read, seqs) if b is not None]

        return await self._run(read)

    async def remove_many(self, seqs: Sequence[int]) -> None:
        def delete() -> None:
            db = self._conn()
            with _transaction(db):
                db.executemany("DELETE FROM batches WHERE seq = ?", [(s,) for s in seqs])

        await self._run(delete)
        for seq in seqs:
            self._forget(seq)

    async def remove(self, seq: int) -> None:
        await self._run(lambda: self._execute("DELETE FROM batches WHERE seq = ?", seq))
        self._forget(seq)

    async def reject(self, batch: SpooledBatch, error: str) -> None:
        """Set a batch the database refuses aside (kept in the file), so the rest goes on."""

        def move() -> None:
            db = self._conn()
            with _transaction(db):
                db.execute(
                    "INSERT INTO rejected SELECT seq, key, kind, created, items, payload, ? "
                    "FROM batches WHERE seq = ?",
                    (error, batch.seq),
                )
                db.execute("DELETE FROM batches WHERE seq = ?", (batch.seq,))

        await self._run(move)
        self._forget(batch.seq)
        self.rejected += 1

    # --- the thread's side --------------------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    async def _append(self, kind: Kind, payload: bytes, items: int, in_doubt: bool) -> str:
        if self._db is None:
            raise UnavailableError("the spool is not open")
        if self.bytes + len(payload) > self.max_bytes:
            raise SpoolFullError(
                f"the database is unavailable and the spool is full ({self.bytes} bytes)"
            )
        key = uuid.uuid4().hex
        created = self._clock()

        def insert() -> int:
            db = self._conn()
            with _transaction(db):
                cur = db.execute(
                    "INSERT INTO batches (key, kind, in_doubt, created, items, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (key, kind, int(in_doubt), created, items, payload),
                )
            return int(cur.lastrowid or 0)

        try:
            seq = await self._run(insert)
        except sqlite3.Error as exc:  # a full or failing disk: no acknowledgement
            raise UnavailableError(f"the spool cannot write: {exc}") from exc
        if not self._rows:
            log.warning("spooling %s to %s: the database cannot take them", kind, self.path)
        self._rows[seq] = _Row(key, kind, in_doubt, created, items, len(payload))
        self._keys[key] = seq
        self.bytes += len(payload)
        return key

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for n in range(_MAX_FILES):
            fd = os.open(self.directory / f"spool-{n}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._lock_fd = fd
            self.path = self.directory / f"spool-{n}.db"
            break
        else:
            raise RuntimeError(f"no free spool file in {self.directory}")
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        os.chmod(self.path, 0o600)
        self._db = db
        for seq, key, kind, in_doubt, created, items, size in db.execute(
            "SELECT seq, key, kind, in_doubt, created, items, length(payload) FROM batches "
            "ORDER BY seq"
        ):
            self._rows[seq] = _Row(key, kind, bool(in_doubt), created, items, size)
            self._keys[key] = seq
            self.bytes += size

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise UnavailableError("the spool is closed")
        return self._db

    def _execute(self, sql: str, *args: object) -> None:
        db = self._conn()
        with _transaction(db):
            db.execute(sql, args)

    def _read(self, seq: int) -> SpooledBatch | None:
        row = (
            self._conn()
            .execute(
                "SELECT seq, key, kind, in_doubt, created, items, payload FROM batches "
                "WHERE seq = ?",
                (seq,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return SpooledBatch(row[0], row[1], row[2], bool(row[3]), row[4], row[5], row[6])

    # --- bookkeeping on the loop ---------------------------------------------------------

    def _forget(self, seq: int) -> None:
        row = self._rows.pop(seq, None)
        if row is None:
            return
        self.bytes -= row.size
        self._keys.pop(row.key, None)
        if not self._rows:
            log.warning("spool drained: every spooled batch is in the database")

    def _settle(self, key: str, write: asyncio.Task[Any]) -> None:
        del self._limbo[key]
        if write.cancelled() or write.exception() is not None:
            return  # it may or may not have committed: the replay finds out (in doubt)
        seq = self._keys.get(key)
        if seq is None:
            return
        # It committed after all: the batch is in the database; the spool's copy goes.
        task = asyncio.get_running_loop().create_task(self.remove(seq))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def settled(self) -> None:
        """Until every settled live write's batch is removed (for tests and shutdown)."""
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._settling)
