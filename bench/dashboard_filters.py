"""The filtered overview on a million raw clicks, and what its indexes cost the click path.

Part 1, reads: the seed of ``bench/_filter_seed.py`` (``--clicks`` raw clicks, default
1,000,000, over the 30 days before its clock, cached under /tmp/bt-filters-cache so a
second run starts at once) in SQLite and in PostgreSQL (a ``pgserver`` whose data
directory is cached there too, or ``BANNERTRACK_BENCH_DATABASE_URL``). Then the page a
marketer sees after clicking a value: ``dashboard.pages.filtered_page_data`` for the last
30 days, everything the overview shows (the cards of the range and of the one before,
the chart's series, the top banners and the eight breakdown lists), under each filter of
``FILTERS``, ``--rounds`` times after one warm-up, as the service answers it: from the
in-memory copy of the clicks (``db/click_copy.py``; its load time and memory printed
first), caught up with the database before each answer. ``--sql-rounds N`` also times
the SQL path alone (no copy), N rounds. Printed per database and filter: the clicks it
matches, the statements one overview runs, the overview's p50 / p95 wall time, the
slowest statement's p95, the CPU one overview costs this process and the database (the
process for SQLite, which runs in it; PostgreSQL's backends, from /proc): a busy machine
disturbs CPU less than wall time.

Part 2, writes (``--writes``): what the fact indexes 0010 made and 0013 dropped would cost
the click path (``--writes-all``: and ``ix_clicks_occurred``, which stays): two databases
at head, one with those indexes (made again) and one without, the same 256-click batches
(the ingest's own ``SqlRepository.record_clicks``) written alternately to each; median
wall time per batch and the ratio.

    .venv/bin/python bench/dashboard_filters.py --no-writes        # the copy, 20 rounds
    .venv/bin/python bench/dashboard_filters.py --sql-rounds 3     # and SQL; and the writes
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench._filter_seed import CACHE, SEED_NOW, postgres_seed, sqlite_seed  # noqa: E402
from bench._filter_seed import rows as seed_rows  # noqa: E402
from bench._servers import create_postgres_database, drop_postgres_database  # noqa: E402
from sqlalchemy import event, func, select, text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from bannertrack.dashboard.pages import (  # noqa: E402
    BREAKDOWN_LIMIT,
    BREAKDOWNS,
    TOP_LIMIT,
    filtered_page_data,
)
from bannertrack.dashboard.periods import Period, resolve_period  # noqa: E402
from bannertrack.db.click_copy import ClickCopy, gap_patience  # noqa: E402
from bannertrack.db.engine import DbTimeouts, create_engine  # noqa: E402
from bannertrack.db.explorer import SqlExplorer  # noqa: E402
from bannertrack.db.filtered_queries import conditions  # noqa: E402
from bannertrack.db.migrate import upgrade  # noqa: E402
from bannertrack.db.repository import SqlRepository  # noqa: E402
from bannertrack.db.tables import CLICK_VALUES, clicks  # noqa: E402
from bannertrack.models import BannerCreate, ClickFacts, ClickFilter, ClickIn  # noqa: E402

# Migration 0010's indexes (the first dropped by 0013): ``--writes`` times a batch with
# and without them (``--writes-all``: ``ix_clicks_occurred`` too, which conversions use).
FACT_INDEXES = {
    "ix_clicks_country_occurred": "country, occurred_at",
    "ix_clicks_utm_campaign_occurred": "utm_campaign, occurred_at",
}
FILTER_INDEXES = {"ix_clicks_occurred": "occurred_at", **FACT_INDEXES}
FILTERS: tuple[tuple[str, ClickFilter], ...] = (
    ("country=DE (the top value)", ClickFilter(values=(("country", "DE"),))),
    ("referrer=t.co", ClickFilter(values=(("referrer", "t.co"),))),
    ("utm_source=newsletter", ClickFilter(values=(("utm_source", "newsletter"),))),
    (
        "country=DE & utm_source=newsletter",
        ClickFilter(values=(("utm_source", "newsletter"), ("country", "DE"))),
    ),
    ("device=mobile", ClickFilter(values=(("device", "mobile"),))),
    ("country=IS (rare)", ClickFilter(values=(("country", "IS"),))),
    ("banner 7 & country=DE", ClickFilter(banner_id=7, values=(("country", "DE"),))),
)
# Generous: the point is to time the statements, not to see them cut at 5 s.
TIMEOUTS = DbTimeouts(statement=600.0)


def _head() -> str:
    versions = ROOT / "src/bannertrack/db/migrations/versions"
    return max(p.name.split("_")[3] for p in versions.glob("*.py") if p.name[0].isdigit())


@contextmanager
def statement_timer(engine: AsyncEngine) -> Iterator[list[float]]:
    times: list[float] = []
    started: dict[int, float] = {}

    def before(conn: Any, cursor: Any, *_: Any) -> None:
        started[id(cursor)] = time.perf_counter()

    def after(conn: Any, cursor: Any, *_: Any) -> None:
        times.append(time.perf_counter() - started.pop(id(cursor), time.perf_counter()))

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    event.listen(engine.sync_engine, "after_cursor_execute", after)
    try:
        yield times
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)
        event.remove(engine.sync_engine, "after_cursor_execute", after)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class DbCpu:
    """CPU seconds the database spent: this process (SQLite) or PostgreSQL's processes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.postmaster = 0

    async def start(self) -> None:
        if self.engine.dialect.name == "postgresql":
            async with self.engine.connect() as conn:
                backend = int(await conn.scalar(text("SELECT pg_backend_pid()")) or 0)
            self.postmaster = int(_stat(backend)[1])

    def now(self) -> float:
        if self.engine.dialect.name == "sqlite":
            return time.process_time()
        # The children of this server's postmaster only: the machine runs other servers.
        total = 0.0
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                fields = _stat(int(entry.name))
                if len(fields) > 12 and int(fields[1]) == self.postmaster:
                    total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: state, ppid, ... (empty if it is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


async def matching(engine: AsyncEngine, f: ClickFilter, start: datetime, end: datetime) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                select(func.count()).select_from(clicks).where(*conditions(f, start, end))
            )
            or 0
        )


async def per_figure(explorer: SqlExplorer, period: Period, f: ClickFilter) -> object:
    """The overview as the page read it before ``Explorer.overview``: one read per figure."""
    totals = await explorer.range_totals(f, period.start, period.end)
    await explorer.range_totals(f, *period.previous)
    await explorer.traffic_series(f, period.start, period.end, period.interval)
    await explorer.top_banners(f, period.start, period.end, TOP_LIMIT, "valid")
    for by, _, _ in BREAKDOWNS:
        await explorer.breakdown(f, by, period.start, period.end, "valid", BREAKDOWN_LIMIT)
    return totals


async def loaded_copy(engine: AsyncEngine, rows: int) -> ClickCopy:
    copy = ClickCopy(
        engine,
        rows=rows,
        retention_days=395,
        gap_patience=gap_patience(5.0),
        clock=lambda: SEED_NOW,
    )
    c0 = time.process_time()
    await copy.load()
    cpu = time.process_time() - c0
    print(
        f"copy: {copy.clicks:,} clicks from {copy.floor}, loaded in {copy.load_seconds:.1f} s "
        f"({cpu:.1f} s CPU of this process), {copy.nbytes / 1e6:.1f} MB "
        f"({copy.nbytes / max(1, copy.clicks):.1f} bytes a click with the arrays' room)",
        flush=True,
    )
    return copy


async def reads(
    engine: AsyncEngine,
    rounds: int,
    *,
    old: bool = False,
    warm: bool = True,
    copy: ClickCopy | None = None,
) -> list[tuple[str, ...]]:
    explorer = SqlExplorer(engine, retention_days=395, clock=lambda: SEED_NOW, copy=copy)
    period = resolve_period("30d", None, None, SEED_NOW)
    if copy is not None:  # every read below is the copy's, none falls back to SQL
        assert copy.floor is not None and copy.floor <= period.previous[0], copy.floor
    cpu = DbCpu(engine)
    await cpu.start()
    sqlite = engine.dialect.name == "sqlite"
    rows = []

    async def page(f: ClickFilter) -> object:
        if old:
            return await per_figure(explorer, period, f)
        return await filtered_page_data(explorer, None, period, f)

    for label, f in FILTERS:
        if warm:
            await page(f)  # warm the caches once
        overview: list[float] = []
        spent: list[float] = []
        own: list[float] = []
        statements: list[float] = []
        per_round = 0
        for _ in range(rounds):
            with statement_timer(engine) as times:
                c0, p0, t0 = cpu.now(), time.process_time(), time.perf_counter()
                data = await page(f)
                overview.append(time.perf_counter() - t0)
                own.append(time.process_time() - p0)
                spent.append(cpu.now() - c0)
            assert data is not None
            per_round = len(times)
            statements.append(max(times))
        rows.append(
            (
                label,
                f"{await matching(engine, f, period.start, period.end):,}",
                str(per_round),
                f"{_pct(overview, 0.5) * 1000:,.1f}",
                f"{_pct(overview, 0.95) * 1000:,.1f}",
                f"{_pct(statements, 0.95) * 1000:,.1f}",
                f"{statistics.median(own) * 1000:,.1f}",
                "-" if sqlite else f"{statistics.fmean(spent) * 1000:,.1f}",
            )
        )
        print(" | ".join(rows[-1]), flush=True)
    return rows


async def writes(
    url: str, bare_url: str, batches: int, indexes: dict[str, str]
) -> tuple[float, float]:
    """Median seconds per 256-click batch: with ``indexes`` (name: columns), and without."""
    repos = []
    for u, wanted in ((url, True), (bare_url, False)):
        engine = create_engine(u)
        await upgrade(engine)
        async with engine.begin() as conn:
            for name, columns in indexes.items():
                if wanted:
                    await conn.execute(
                        text(f"CREATE INDEX IF NOT EXISTS {name} ON clicks ({columns})")
                    )
                else:
                    await conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
        await engine.dispose()
        repo = SqlRepository.from_url(u)
        for i in range(20):
            await repo.create_banner(
                BannerCreate(
                    name=f"b{i}",
                    image_url="https://a.example/x.png",
                    target_url="https://b.example/",
                )
            )
        repos.append(repo)
    rng = random.Random(5)
    names = {name: i for i, name in enumerate(CLICK_VALUES)}
    drawn = list(seed_rows(256 * (batches + 10), seed=7))
    timed: list[list[float]] = [[], []]
    try:
        for b in range(batches + 10):
            batch = [
                ClickIn(
                    banner_id=rng.randint(1, 20),
                    occurred_at=datetime.now(UTC),
                    visitor=f"v{rng.randint(1, 1000)}",
                    bot=r[names["bot"]],
                    facts=ClickFacts(**{k: r[names[k]] for k in _FACTS}),
                )
                for r in drawn[b * 256 : (b + 1) * 256]
            ]
            for side in (0, 1) if b % 2 else (1, 0):
                t0 = time.perf_counter()
                await repos[side].record_clicks(batch)
                if b >= 10:
                    timed[side].append(time.perf_counter() - t0)
    finally:
        for repo in repos:
            await repo.close()
    return statistics.median(timed[0]), statistics.median(timed[1])


_FACTS = (
    "country", "device", "browser", "os",
    "referrer_host", "utm_source", "utm_medium", "utm_campaign",
)  # fmt: skip


def _table(title: str, rows: list[tuple[str, ...]]) -> None:
    head = (
        "filter", "clicks", "statements", "overview p50 ms", "overview p95 ms",
        "slowest statement p95 ms", "process CPU ms / overview (median)",
        "PostgreSQL CPU ms / overview (mean, 10 ms ticks)",
    )  # fmt: skip
    print(f"\n{title}")
    print("| " + " | ".join(head) + " |")
    print("|---|" + "---:|" * (len(head) - 1))
    for r in rows:
        print("| " + " | ".join(r) + " |")


@contextmanager
def cached_postgres() -> Iterator[str]:
    given = os.environ.get("BANNERTRACK_BENCH_DATABASE_URL")
    if given:
        yield given
        return
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="bt-runtime-")
    import pgserver

    CACHE.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(CACHE / "pgdata", cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


async def main(args: argparse.Namespace) -> None:
    head = _head()
    wanted = [name for name in ("sqlite", "postgresql") if not args.only or name in args.only]
    with cached_postgres() as admin:
        targets: list[tuple[str, str]] = []
        if "sqlite" in wanted:
            path, seconds = await sqlite_seed(args.clicks, head)
            print(f"SQLite: {path} ({'cached' if not seconds else f'made in {seconds:.0f} s'})")
            targets.append(("SQLite", f"sqlite:///{path}"))
        if "postgresql" in wanted:
            url, seconds = await postgres_seed(admin, args.clicks, head)
            print(f"PostgreSQL: {url} ({'cached' if not seconds else f'made in {seconds:.0f} s'})")
            targets.append(("PostgreSQL", url))
        for name, url in targets:
            engine = create_engine(url, timeouts=TIMEOUTS)
            try:
                title = f"{name}, {args.clicks:,} clicks, filtered overview of 30 days"
                if args.per_figure:
                    print(f"\n{title}, one read per figure (before)", flush=True)
                    _table(
                        f"{title}, one read per figure (before)",
                        await reads(engine, args.per_figure, old=True, warm=False),
                    )
                if args.sql_rounds:
                    sql = f"{title}, SQL (no copy), {args.sql_rounds} rounds"
                    print(f"\n{sql}", flush=True)
                    _table(sql, await reads(engine, args.sql_rounds))
                if args.rounds:
                    copy = await loaded_copy(engine, args.copy_rows)
                    held = f"{title}, in-memory copy, {args.rounds} rounds"
                    print(f"\n{held}", flush=True)
                    _table(held, await reads(engine, args.rounds, copy=copy))
            finally:
                await engine.dispose()
        if args.writes:
            which = "0010's three indexes" if args.writes_all else "0010's two fact indexes"
            print(f"\nClick batches of 256 (median ms per batch), with / without {which}:")
            print("| database | with | without | ratio |")
            print("|---|---:|---:|---:|")
            for name, _url in targets:
                with tempfile.TemporaryDirectory(prefix="bt-filters-w-") as tmp:
                    if name == "SQLite":
                        a, b = (f"sqlite:///{Path(tmp) / f}" for f in ("w1.db", "w2.db"))
                    else:
                        a = await create_postgres_database(admin)
                        b = await create_postgres_database(admin)
                    try:
                        which_ix = FILTER_INDEXES if args.writes_all else FACT_INDEXES
                        with_ix, without = await writes(a, b, args.batches, which_ix)
                    finally:
                        if name != "SQLite":
                            await drop_postgres_database(admin, a)
                            await drop_postgres_database(admin, b)
                print(
                    f"| {name} | {with_ix * 1000:.2f} | {without * 1000:.2f} "
                    f"| {with_ix / without:.3f} |"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=20, help="overviews from the copy")
    parser.add_argument("--sql-rounds", type=int, default=0, help="overviews by SQL alone")
    parser.add_argument("--copy-rows", type=int, default=2_000_000)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument(
        "--per-figure",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="also time the page's old reads, one per figure, ROUNDS times without warm-up",
    )
    parser.add_argument("--writes", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--writes-all", action="store_true", help="ix_clicks_occurred too")
    parser.add_argument("--only", action="append", choices=("sqlite", "postgresql"))
    asyncio.run(main(parser.parse_args()))
