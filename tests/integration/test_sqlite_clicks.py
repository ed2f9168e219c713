"""SQLite's click batches in a writer thread (db/sqlite_clicks.py): the same bytes, the same
errors, the same guarantees as the SQLAlchemy path they replace.

The reference is the SQLAlchemy path itself, run on a second database with the writer
switched off: every batch is written both ways and every table compared value by value,
with each value's SQLite type.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import _migrate_sqlite

from bannertrack.clicks.ingest import ClickIngest
from bannertrack.conversions.click_ids import LENGTH, MICROSECOND_LENGTH, new_click_id
from bannertrack.db.engine import DbTimeouts
from bannertrack.db.repository import SqlRepository
from bannertrack.db.sqlite_clicks import SqliteClickWriter, stored_time
from bannertrack.db.tables import metadata
from bannertrack.errors import DatabaseUnavailableError
from bannertrack.models import BannerCreate, ClickFacts, ClickIn

NOW = datetime(2026, 11, 30, 10, 0, 59, 999_999, tzinfo=UTC)
# Both path's rows of every table, keyed for a stable order; rowid where the table has one.
_TABLES = {t.name: t for t in metadata.sorted_tables}
_WITHOUT_ROWID = {
    n for n, t in _TABLES.items() if t.dialect_options["sqlite"]["with_rowid"] is False
}


@pytest.fixture
def backend() -> str:
    return "sqlite"


def _url(path: Path) -> str:
    url = f"sqlite:///{path}"
    _migrate_sqlite(url)
    return url


@pytest.fixture
async def twin(tmp_path: Path) -> AsyncIterator[tuple[SqlRepository, SqlRepository]]:
    """A repository on the writer thread and one on the SQLAlchemy path, on two databases."""
    raw = SqlRepository.from_url(_url(tmp_path / "raw.db"), breakdown_top_n=3)
    ref = SqlRepository.from_url(_url(tmp_path / "ref.db"), breakdown_top_n=3, sqlite_writer=False)
    assert raw.sqlite_click_writer is not None and ref.sqlite_click_writer is None
    try:
        yield raw, ref
    finally:
        await raw.close()
        await ref.close()


def _banner(name: str) -> BannerCreate:
    return BannerCreate(
        name=name, image_url="https://cdn.example.com/a.png", target_url="https://a.example/"
    )


def dump(path: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, each value with its SQLite type (``typeof``)."""
    conn = sqlite3.connect(path)
    try:
        out = {}
        for name in [*_TABLES, "sqlite_sequence"]:
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({name})")]
            rowid = "" if name in _WITHOUT_ROWID else "rowid, "
            values = ", ".join(f'"{c}", typeof("{c}")' for c in cols)
            out[name] = conn.execute(
                f"SELECT {rowid}{values} FROM {name} ORDER BY 1, 2, 3, 4"
            ).fetchall()
        return out
    finally:
        conn.close()


def _db_path(repo: SqlRepository) -> str:
    return str(repo.engine.url.database)


def _dumps(
    raw: SqlRepository, ref: SqlRepository
) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, list[tuple[Any, ...]]]]:
    """Both databases' rows (``dump``), less the tables whose created_at is each path's
    own clock."""
    written, expected = dump(_db_path(raw)), dump(_db_path(ref))
    for table in ("banners", "banner_totals"):
        written.pop(table), expected.pop(table)
    return written, expected


def random_batches(seed: int, banner_ids: list[int]) -> list[list[ClickIn]]:
    """Clicks that exercise every rule: repeats within and across batches and windows,
    bots, missing visitors, a banner that does not exist, more values than top_n (the
    fold into "(other)"), times with and without microseconds, in another zone, and text
    that JSON has to escape."""
    rng = random.Random(seed)
    odd_text = ["plain", 'quo"te', "back\\slash", "uni ü 😀", "\\u0000 literally", "tab\tnl\n"]
    zones = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    batches = []
    at = NOW - timedelta(hours=3)
    for _ in range(12):
        batch = []
        for _ in range(rng.randint(1, 40)):
            at += timedelta(microseconds=rng.choice([0, 1, 999_999, 1_000_000, 61_000_000]))
            if rng.random() < 0.05:
                at += timedelta(minutes=50)  # some visitors come back after the window
            facts = None
            if rng.random() < 0.8:
                facts = ClickFacts(
                    country=rng.choice(["DE", "FR", None]),
                    device=rng.choice(["mobile", "desktop"]),
                    browser=rng.choice(["Firefox", "Chrome", "Safari", "Edge", "(other)"]),
                    os=rng.choice(["Linux", None]),
                    referrer_host=rng.choice(["a.example", "b.example", "c.example", "d.example"]),
                    utm_source=rng.choice([None, "news", rng.choice(odd_text)]),
                    utm_medium=None,
                    utm_campaign=rng.choice([None, "(none)", "x"]),
                )
            bot = rng.random() < 0.1
            # Some come through a placement's signed click URL (placement_minutes rollup).
            placement = rng.choice([None, None, 1, 2])
            signature = None if placement is None else rng.choice(["valid", "expired"])
            batch.append(
                ClickIn(
                    banner_id=rng.choice([*banner_ids, 999]),
                    occurred_at=at.astimezone(rng.choice(zones)),
                    user_agent=rng.choice([None, *odd_text]),
                    referrer=rng.choice([None, "https://a.example/x?y=1"]),
                    visitor=rng.choice([None, "v1", "v2", "v3", "v4"]),
                    bot=bot,
                    bot_reason="crawler:test" if bot else None,
                    facts=facts,
                    placement_id=placement,
                    signature=signature,
                    click_id=rng.choice([None, None, new_click_id(at)]),
                )
            )
        batches.append(batch)
    return batches


async def test_both_paths_store_the_same_bytes_and_answer_the_same(
    twin: tuple[SqlRepository, SqlRepository],
) -> None:
    raw, ref = twin
    for repo in twin:
        ids = [(await repo.create_banner(_banner(f"b{i}"))).id for i in range(3)]
    for batch in random_batches(7, ids):
        assert await raw.record_clicks(batch) == await ref.record_clicks(batch)
    written, expected = _dumps(raw, ref)
    assert written == expected
    assert len(written["clicks"]) > 100 and any(r[-2] for r in written["visitor_clicks"])
    other = [r for r in written["click_breakdowns"] if r[6] == "(other)"]
    assert other, "no value was folded into (other): the test lost its point"
    assert len(written["placement_minutes"]) > 10, "no placement clicks: the test lost its point"
    ids = [r for r in written["clicks"] if r[-2] is not None]  # (click_id, its type) last
    assert ids and len(ids) < len(written["clicks"]), "the test lost its mix of click ids"
    banner_totals = "SELECT * FROM banner_totals ORDER BY banner_id"
    assert _query(_db_path(raw), banner_totals) == _query(_db_path(ref), banner_totals)


async def test_a_batch_of_more_breakdown_rows_than_one_statement_holds(
    twin: tuple[SqlRepository, SqlRepository],
) -> None:
    """The breakdown upsert binds at most 256 rows a statement, padded to a multiple of 8:
    batches of 4 to 600 rows (cut into several statements, with and without padding)
    store what the SQLAlchemy path stores."""
    raw, ref = twin
    for repo in twin:
        ids = [(await repo.create_banner(_banner(f"b{i}"))).id for i in range(150)]
    at = NOW
    for n in (1, 2, 3, 64, 150, 1, 150):  # banners in the batch: 4 rows each, a second day
        at += timedelta(hours=7)
        batch = [
            ClickIn(
                banner_id=ids[i],
                occurred_at=at,
                facts=ClickFacts(country="DE", device="mobile", os=f"os{i % 2}"),
            )
            for i in range(n)
        ]
        assert await raw.record_clicks(batch) == await ref.record_clicks(batch)
    written, expected = dump(_db_path(raw)), dump(_db_path(ref))
    assert len(written["click_breakdowns"]) > 2 * 256
    assert written["click_breakdowns"] == expected["click_breakdowns"]


def _query(path: str, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_stored_time_is_what_sqlalchemy_stores() -> None:
    assert stored_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02 03:04:05.000000"
    east = timezone(timedelta(hours=2))
    assert (
        stored_time(datetime(2026, 1, 1, 1, 0, 0, 7, tzinfo=east)) == "2025-12-31 23:00:00.000007"
    )
    with pytest.raises(ValueError, match="naive"):
        stored_time(datetime(2026, 1, 1))


async def test_a_locked_database_is_unavailable_and_the_next_batch_recovers(
    tmp_path: Path,
) -> None:
    url = _url(tmp_path / "bt.db")
    repo = SqlRepository.from_url(url, timeouts=DbTimeouts(statement=0.2))
    try:
        banner = (await repo.create_banner(_banner("a"))).id
        other = sqlite3.connect(str(tmp_path / "bt.db"), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # holds the write lock past the busy timeout
        try:
            with pytest.raises(DatabaseUnavailableError):
                await repo.record_clicks([ClickIn(banner_id=banner, occurred_at=NOW)])
        finally:
            other.execute("ROLLBACK")
            other.close()
        recorded = await repo.record_clicks([ClickIn(banner_id=banner, occurred_at=NOW)])
        assert recorded[0] is not None and recorded[0].id == 1  # nothing of the first stored
    finally:
        await repo.close()


async def test_a_read_only_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "bt.db"
    writable = SqlRepository.from_url(_url(path))
    banner = (await writable.create_banner(_banner("a"))).id
    await writable.close()
    repo = SqlRepository.from_url(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        assert repo.sqlite_click_writer is not None
        with pytest.raises(DatabaseUnavailableError):
            await repo.record_clicks([ClickIn(banner_id=banner, occurred_at=NOW)])
    finally:
        await repo.close()


async def test_a_click_the_database_rejects_fails_alone(tmp_path: Path) -> None:
    """A rejected row is a plain error, not an outage: ingest bisects the batch around it."""
    path = tmp_path / "bt.db"
    repo = SqlRepository.from_url(_url(path))
    conn = sqlite3.connect(str(path))
    conn.execute(
        "CREATE TRIGGER reject BEFORE INSERT ON clicks WHEN NEW.user_agent = 'reject' "
        "BEGIN SELECT RAISE(ABORT, 'rejected by the test'); END"
    )
    conn.commit()
    conn.close()
    ingest = ClickIngest(repo, max_wait=0.05)
    await ingest.start()
    try:
        banner = (await repo.create_banner(_banner("a"))).id
        agents = ["ok"] * 5 + ["reject"] + ["ok"] * 5
        results = await asyncio.gather(
            *(
                ingest.record(ClickIn(banner_id=banner, occurred_at=NOW, user_agent=a))
                for a in agents
            ),
            return_exceptions=True,
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        assert len(failed) == 1 and isinstance(failed[0], sqlite3.IntegrityError)
        assert ingest.batches_written > 1  # bisected
        stats = await repo.click_stats(banner)
        assert stats is not None and stats.total_clicks == 10
        assert ingest.last_outage is None  # not mistaken for an outage
    finally:
        await ingest.stop()
        await repo.close()


async def test_the_query_counter_sees_the_statements(sql_repo: SqlRepository) -> None:
    banner = (await sql_repo.create_banner(_banner("a"))).id
    before = sql_repo.queries.count
    await sql_repo.record_clicks([ClickIn(banner_id=banner, occurred_at=NOW, visitor="v")])
    # check, visitor state, visitor write, clicks, totals, minutes, breakdowns known, breakdowns
    assert sql_repo.queries.count - before == 8
    before = sql_repo.queries.count
    await sql_repo.record_clicks([ClickIn(banner_id=banner, occurred_at=NOW)])
    assert sql_repo.queries.count - before == 5  # no visitor, the day's values known


async def test_the_writer_connection_has_the_engine_pragmas(sql_repo: SqlRepository) -> None:
    banner = (await sql_repo.create_banner(_banner("a"))).id
    await sql_repo.record_clicks([ClickIn(banner_id=banner, occurred_at=NOW)])
    names = ("journal_mode", "synchronous", "foreign_keys", "secure_delete", "busy_timeout")
    writer = sql_repo.sqlite_click_writer
    assert writer is not None

    def pragmas(conn: sqlite3.Connection) -> list[Any]:
        return [conn.execute(f"PRAGMA {n}").fetchone()[0] for n in names]

    theirs = await writer.on_connection(pragmas)
    async with sql_repo.engine.connect() as pooled:
        ours = [(await pooled.exec_driver_sql(f"PRAGMA {n}")).scalar() for n in names]
    assert theirs == ours == ["wal", 2, 1, 1, 5000]


async def test_close_closes_the_writer_connection(database_url: str) -> None:
    repo = SqlRepository.from_url(database_url)
    banner = (await repo.create_banner(_banner("a"))).id
    await repo.record_clicks([ClickIn(banner_id=banner, occurred_at=NOW)])
    wal = database_url.removeprefix("sqlite:///") + "-wal"
    assert _exists(wal)
    await repo.close()
    assert not _exists(wal)  # the last connection closed: SQLite checkpointed and removed it
    # As the engine after dispose(): used again, it opens a new connection.
    recorded = await repo.record_clicks([ClickIn(banner_id=banner, occurred_at=NOW)])
    assert recorded[0] is not None and recorded[0].id == 2
    await repo.close()
    assert not _exists(wal)


def _exists(path: str) -> bool:
    return Path(path).exists()


async def test_text_with_nul_goes_the_sqlalchemy_way_and_is_stored_whole(
    database_url: str, sql_repo: SqlRepository
) -> None:
    banner = (await sql_repo.create_banner(_banner("a"))).id
    odd = "a\x00b"
    recorded = await sql_repo.record_clicks(
        [ClickIn(banner_id=banner, occurred_at=NOW, referrer=odd, user_agent="\\u0000")]
    )
    assert recorded[0] is not None
    stored = _query(
        database_url.removeprefix("sqlite:///"), "SELECT referrer, user_agent FROM clicks"
    )
    assert stored == [(odd, "\\u0000")]


async def test_click_ids_of_every_form_are_stored_as_given(
    twin: tuple[SqlRepository, SqlRepository],
) -> None:
    # The writer reads the link's ids (36 ASCII characters) by position; any other (the
    # older forms: 32 characters, or 22 from before migration 0012) sends its batch the
    # SQLAlchemy way.
    raw, ref = twin
    for repo in twin:
        banner = (await repo.create_banner(_banner("a"))).id
    makers = [
        lambda: new_click_id(NOW),
        lambda: secrets.token_urlsafe(24)[:MICROSECOND_LENGTH],
        lambda: secrets.token_urlsafe(16),  # unique among themselves (a partial index)
        lambda: secrets.token_urlsafe(27)[: LENGTH - 1] + "é",  # not ASCII: not by position
    ]
    given = []
    for make in makers:
        ids = [make(), None, make()]
        batch = [ClickIn(banner_id=banner, occurred_at=NOW, click_id=i) for i in ids]
        assert await raw.record_clicks(batch) == await ref.record_clicks(batch)
        given += ids
    written, expected = _dumps(raw, ref)
    assert written == expected
    assert [r[-2] for r in written["clicks"]] == given


async def test_an_in_memory_database_keeps_the_sqlalchemy_path() -> None:
    from bannertrack.db.migrate import upgrade

    repo = SqlRepository.from_url("sqlite://")
    try:
        assert repo.sqlite_click_writer is None
        await upgrade(repo.engine)
        banner = (await repo.create_banner(_banner("a"))).id
        recorded = await repo.record_clicks([ClickIn(banner_id=banner, occurred_at=NOW)])
        assert recorded[0] is not None
        stats = await repo.click_stats(banner)
        assert stats is not None and stats.total_clicks == 1
    finally:
        await repo.close()
    for url in ("sqlite:///:memory:", "sqlite:///file::memory:?cache=shared&uri=true"):
        from bannertrack.db.breakdown_writes import BreakdownFold
        from bannertrack.db.engine import create_engine

        engine = create_engine(url)
        assert SqliteClickWriter.for_engine(engine, BreakdownFold()) is None
        await engine.dispose()
