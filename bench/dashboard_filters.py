"""The filtered overview on a million raw clicks, and what its indexes cost the click path.

Part 1, reads: a database (SQLite file, and PostgreSQL from ``pgserver`` unless
``BANNERTRACK_BENCH_DATABASE_URL`` names a server) migrated to head and loaded with
``--clicks`` raw clicks (default 1,000,000) spread evenly over the last 30 days, 50
banners, facts drawn with skew (30 countries, 20 campaigns, 10 sources, 200 referrer
hosts, 3 devices, 8 browsers, 6 systems; 3 % bots, 10 % repeats). Then the dashboard's
filtered overview for the last 30 days (``dashboard.pages.filtered_page_data``: the totals
of the range and of the one before, the daily series, the top banners and the eight
breakdowns, 12 queries) under several filters, ``--rounds`` times each; every statement
is timed at the driver (SQLAlchemy's cursor events). Printed per database and filter:
p50 / p95 / max of a statement, and the p95 of the whole overview.

Part 2, writes (``--writes``): the click path's cost of migration 0010's indexes, on
SQLite and PostgreSQL: two databases, one at head and one with its three indexes
dropped, the same click batches (256 clicks, the link benchmark's visitors and agents)
written alternately to each through ``SqlRepository.record_clicks`` (the ingest's own
call), the median wall time per batch of each and their ratio.

    .venv/bin/python bench/dashboard_filters.py                  # both parts, ~8 minutes
    .venv/bin/python bench/dashboard_filters.py --clicks 200000 --rounds 5 --no-postgres
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench._servers import (  # noqa: E402
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
)
from sqlalchemy import event, insert, text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from bannertrack.dashboard.pages import filtered_page_data  # noqa: E402
from bannertrack.dashboard.periods import resolve_period  # noqa: E402
from bannertrack.db.engine import create_engine  # noqa: E402
from bannertrack.db.explorer import SqlExplorer  # noqa: E402
from bannertrack.db.migrate import upgrade  # noqa: E402
from bannertrack.db.repository import SqlRepository  # noqa: E402
from bannertrack.db.tables import banners, clicks  # noqa: E402
from bannertrack.models import ClickFilter, ClickIn  # noqa: E402

FILTER_INDEXES = (
    "ix_clicks_occurred",
    "ix_clicks_country_occurred",
    "ix_clicks_utm_campaign_occurred",
)
COUNTRIES = [f"C{i:02d}" for i in range(29)] + ["DE"]
FILTERS: tuple[tuple[str, ClickFilter], ...] = (
    ("country=DE (top)", ClickFilter(values=(("country", "DE"),))),
    ("country=C20 (rare)", ClickFilter(values=(("country", "C20"),))),
    (
        "country=DE & campaign=camp-1",
        ClickFilter(values=(("utm_campaign", "camp-1"), ("country", "DE"))),
    ),
    ("referrer=host-3.example (no index)", ClickFilter(values=(("referrer", "host-3.example"),))),
    ("device=mobile (no index)", ClickFilter(values=(("device", "mobile"),))),
    ("banner 7 & country=DE", ClickFilter(banner_id=7, values=(("country", "DE"),))),
)


def _skewed(rng: random.Random, values: list[str], s: float = 1.1) -> str:
    # Zipf-like: the first values are the most frequent.
    weights = [1 / (i + 1) ** s for i in range(len(values))]
    return rng.choices(values, weights)[0]


def _rows(n: int, now: datetime, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    countries = ["DE", *COUNTRIES[:-1]]
    campaigns = [f"camp-{i}" for i in range(20)]
    sources = [f"src-{i}" for i in range(10)]
    hosts = [f"host-{i}.example" for i in range(200)]
    devices, browsers = ["desktop", "mobile", "tablet"], [f"Browser {i}" for i in range(8)]
    systems = [f"OS {i}" for i in range(6)]
    span = 30 * 86_400
    for _ in range(n):
        bot = rng.random() < 0.03
        yield {
            "banner_id": rng.randint(1, 50),
            "occurred_at": now - timedelta(seconds=rng.random() * span),
            "user_agent": None,
            "referrer": None,
            "visitor": None,
            "bot": bot,
            "bot_reason": "crawler" if bot else None,
            "repeat": (not bot) and rng.random() < 0.10,
            "country": _skewed(rng, countries) if rng.random() < 0.95 else None,
            "device": _skewed(rng, devices),
            "browser": _skewed(rng, browsers),
            "os": _skewed(rng, systems),
            "referrer_host": _skewed(rng, hosts) if rng.random() < 0.6 else None,
            "utm_source": _skewed(rng, sources) if rng.random() < 0.5 else None,
            "utm_medium": "email" if rng.random() < 0.3 else None,
            "utm_campaign": _skewed(rng, campaigns) if rng.random() < 0.5 else None,
        }


async def load(engine: AsyncEngine, n: int, now: datetime) -> float:
    """Migrate, load ``n`` clicks with the click indexes dropped, rebuild them; seconds."""
    t0 = time.perf_counter()
    await upgrade(engine)
    names = ("ix_clicks_banner_occurred", *FILTER_INDEXES)
    async with engine.begin() as conn:
        await conn.execute(
            insert(banners),
            [
                {
                    "name": f"Banner {i}",
                    "image_url": f"https://cdn.example/{i}.png",
                    "target_url": f"https://shop.example/{i}",
                    "active": True,
                    "forward_query": True,
                    "created_at": now - timedelta(days=60),
                    "updated_at": now - timedelta(days=60),
                }
                for i in range(1, 51)
            ],
        )
        for name in names:
            await conn.execute(text(f"DROP INDEX {name}"))
    batch: list[dict[str, Any]] = []
    for row in _rows(n, now, seed=29):
        batch.append(row)
        if len(batch) == 20_000:
            async with engine.begin() as conn:
                await conn.execute(insert(clicks), batch)
            batch = []
    if batch:
        async with engine.begin() as conn:
            await conn.execute(insert(clicks), batch)
    async with engine.begin() as conn:
        await conn.run_sync(
            lambda sync: [ix.create(sync) for ix in clicks.indexes if ix.name in names]
        )
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    return time.perf_counter() - t0


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


async def reads(engine: AsyncEngine, rounds: int, now: datetime) -> list[tuple[str, ...]]:
    explorer = SqlExplorer(engine, retention_days=395, clock=lambda: now)
    period = resolve_period("30d", None, None, now)
    rows = []
    for label, f in FILTERS:
        await filtered_page_data(explorer, None, period, f)  # warm the caches once
        overview: list[float] = []
        with statement_timer(engine) as times:
            for _ in range(rounds):
                t0 = time.perf_counter()
                data = await filtered_page_data(explorer, None, period, f)
                overview.append(time.perf_counter() - t0)
                assert data is not None
        rows.append(
            (
                label,
                f"{data.totals.total_clicks:,}",
                f"{_pct(times, 0.5) * 1000:.1f}",
                f"{_pct(times, 0.95) * 1000:.1f}",
                f"{max(times) * 1000:.1f}",
                f"{_pct(overview, 0.95) * 1000:.0f}",
            )
        )
    return rows


async def writes(
    url: str, bare_url: str, batches: int, keep: tuple[str, ...] = FILTER_INDEXES
) -> tuple[float, float]:
    """Median seconds per 256-click batch: with the filter indexes ``keep``, and without any."""
    repos = []
    for u, dropped in (
        (url, [n for n in FILTER_INDEXES if n not in keep]),
        (bare_url, list(FILTER_INDEXES)),
    ):
        engine = create_engine(u)
        await upgrade(engine)
        async with engine.begin() as conn:
            for name in dropped:
                await conn.execute(text(f"DROP INDEX {name}"))
        await engine.dispose()
        repo = SqlRepository.from_url(u)
        for i in range(20):
            from bannertrack.models import BannerCreate

            await repo.create_banner(
                BannerCreate(
                    name=f"b{i}",
                    image_url="https://a.example/x.png",
                    target_url="https://b.example/",
                )
            )
        repos.append(repo)
    rng = random.Random(5)
    rows = list(_rows(256 * (batches + 10), datetime.now(UTC), seed=7))
    timed: list[list[float]] = [[], []]
    try:
        for b in range(batches + 10):
            chunk = rows[b * 256 : (b + 1) * 256]
            batch = [
                ClickIn(
                    banner_id=rng.randint(1, 20),
                    occurred_at=datetime.now(UTC),
                    visitor=f"v{rng.randint(1, 1000)}",
                    bot=r["bot"],
                    facts=None,
                )
                for r in chunk
            ]
            facts_batch = [_with_facts(c, r) for c, r in zip(batch, chunk, strict=True)]
            for side in (0, 1) if b % 2 else (1, 0):
                t0 = time.perf_counter()
                await repos[side].record_clicks(facts_batch)
                if b >= 10:
                    timed[side].append(time.perf_counter() - t0)
    finally:
        for repo in repos:
            await repo.close()
    return statistics.median(timed[0]), statistics.median(timed[1])


def _with_facts(click: ClickIn, row: dict[str, Any]) -> ClickIn:
    from bannertrack.models import ClickFacts

    facts = ClickFacts(
        country=row["country"],
        device=row["device"],
        browser=row["browser"],
        os=row["os"],
        referrer_host=row["referrer_host"],
        utm_source=row["utm_source"],
        utm_medium=row["utm_medium"],
        utm_campaign=row["utm_campaign"],
    )
    return ClickIn(
        banner_id=click.banner_id,
        occurred_at=click.occurred_at,
        visitor=click.visitor,
        bot=click.bot,
        facts=facts,
    )


def _table(title: str, rows: list[tuple[str, ...]]) -> None:
    head = ("filter", "clicks", "stmt p50 ms", "stmt p95 ms", "stmt max ms", "page p95 ms")
    print(f"\n{title}")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")


async def main(args: argparse.Namespace) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="bt-filters-") as tmp:
        targets: list[tuple[str, str]] = [("SQLite", f"sqlite:///{Path(tmp) / 'f.db'}")]
        with contextlib_postgres(not args.no_postgres) as admin:
            if admin is not None:
                targets.append(("PostgreSQL", await create_postgres_database(admin)))
            for name, url in targets:
                engine = create_engine(url)
                try:
                    seconds = await load(engine, args.clicks, now)
                    print(f"{name}: loaded {args.clicks:,} clicks in {seconds:.0f} s")
                    _table(
                        f"{name}, filtered overview of 30 days, {args.rounds} rounds",
                        await reads(engine, args.rounds, now),
                    )
                finally:
                    await engine.dispose()
            if args.writes:
                print("\nClick batches of 256 (median ms per batch), same run, alternating:")
                print("| database | with 0010's indexes | without | ratio |")
                print("|---|---|---|---|")
                for name, _url in targets:
                    if name == "SQLite":
                        a = f"sqlite:///{Path(tmp) / 'w1.db'}"
                        b = f"sqlite:///{Path(tmp) / 'w2.db'}"
                    else:
                        assert admin is not None
                        a = await create_postgres_database(admin)
                        b = await create_postgres_database(admin)
                    with_ix, without = await writes(a, b, args.batches)
                    print(
                        f"| {name} | {with_ix * 1000:.2f} | {without * 1000:.2f} "
                        f"| {with_ix / without:.3f} |"
                    )
            if admin is not None:
                for _name, url in targets[1:]:
                    await drop_postgres_database(admin, url)


@contextmanager
def contextlib_postgres(wanted: bool) -> Iterator[str | None]:
    if not wanted:
        yield None
        return
    with postgres_admin_url() as admin:
        yield admin


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--writes", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--no-postgres", action="store_true")
    asyncio.run(main(parser.parse_args()))
