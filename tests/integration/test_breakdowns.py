"""Breakdowns over SQLite and PostgreSQL: counts, the (other) fold, the cache, HTTP, migration.

Every count is checked against the clicks the test itself recorded.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, text
from tests.conftest import ADMIN
from tests.integration.test_cached_repository import NaiveCache
from tests.support.banners import make_banner
from tests.support.race import RacedReads, WriteRace
from tests.support.slow import SlowReads

from bannertrack.cache import MemoryCache
from bannertrack.caching.cached_repository import CachedRepository
from bannertrack.db.engine import create_engine
from bannertrack.db.migrate import upgrade
from bannertrack.db.repository import SqlRepository
from bannertrack.db.tables import click_breakdowns, clicks
from bannertrack.models import (
    DIMENSIONS,
    NONE_VALUE,
    OTHER_VALUE,
    BannerCreate,
    ClickFacts,
    ClickIn,
    Dimension,
)

DAY1 = datetime(2026, 11, 20, 23, 59, 30, tzinfo=UTC)
DAY2 = datetime(2026, 11, 21, 0, 0, 30, tzinfo=UTC)


def banner_in(i: int) -> BannerCreate:
    return BannerCreate(
        name=f"banner {i}",
        image_url=f"https://cdn.example.com/{i}.png",
        target_url=f"https://shop.example.com/{i}",
    )


def click(banner_id: int, at: datetime, bot: bool = False, **facts: str | None) -> ClickIn:
    return ClickIn(
        banner_id=banner_id, occurred_at=at, bot=bot, facts=ClickFacts(**facts) if facts else None
    )


async def test_breakdown_counts_equal_the_recorded_clicks(sql_repo: SqlRepository) -> None:
    a = (await sql_repo.create_banner(banner_in(1))).id
    b = (await sql_repo.create_banner(banner_in(2))).id
    rng = random.Random(7)
    hosts = ["google.com", "t.co", "news.ycombinator.com", None]
    sent: list[ClickIn] = []
    for i in range(120):
        at = DAY1 if i % 2 else DAY2
        sent.append(
            click(
                rng.choice([a, b]),
                at,
                bot=i % 10 == 0,
                referrer_host=rng.choice(hosts),
                country=rng.choice(["DE", "US", None]),
            )
        )
    for lo in range(0, len(sent), 25):
        await sql_repo.record_clicks(sent[lo : lo + 25])

    start, end = DAY1 - timedelta(hours=1), DAY2
    got = await sql_repo.breakdown(a, "referrer", start, end, limit=100)
    assert got is not None
    want = Counter(
        (c.facts.referrer_host if c.facts else None) or NONE_VALUE for c in sent if c.banner_id == a
    )
    assert {i.value: i.clicks for i in got.items} == dict(want)
    assert got.other == 0
    assert (got.from_, got.to) == (
        datetime(2026, 11, 20, tzinfo=UTC),
        datetime(2026, 11, 22, tzinfo=UTC),
    )
    assert [i.clicks for i in got.items] == sorted((i.clicks for i in got.items), reverse=True)

    valid = await sql_repo.breakdown(None, "country", start, end, "valid", limit=100)
    assert valid is not None and valid.banner_id is None
    want_valid = Counter(
        (c.facts.country if c.facts else None) or NONE_VALUE for c in sent if not c.bot
    )
    assert {i.value: i.clicks for i in valid.items} == dict(want_valid)

    # limit: the rest goes to other; one day only.
    top1 = await sql_repo.breakdown(None, "referrer", DAY2, DAY2 + timedelta(hours=1), limit=1)
    assert top1 is not None
    day2 = [c for c in sent if c.occurred_at == DAY2]
    assert top1.items[0].clicks + top1.other == len(day2)
    # Every dimension sums to all clicks (a click without a fact counts as "(none)").
    for by in DIMENSIONS:
        whole = await sql_repo.breakdown(None, by, start, end, limit=100)
        assert whole is not None
        assert sum(i.clicks for i in whole.items) + whole.other == len(sent)


async def test_raw_click_keeps_its_facts(sql_repo: SqlRepository) -> None:
    b = (await sql_repo.create_banner(banner_in(1))).id
    await sql_repo.record_clicks(
        [click(b, DAY1, country="FR", device="mobile", utm_campaign="bf", referrer_host="t.co")]
    )
    async with sql_repo.engine.connect() as conn:
        row = (await conn.execute(select(clicks))).one()
    assert (row.country, row.device, row.utm_campaign, row.referrer_host) == (
        "FR",
        "mobile",
        "bf",
        "t.co",
    )


async def test_breakdown_of_missing_banner_is_none(sql_repo: SqlRepository) -> None:
    assert await sql_repo.breakdown(999, "os", DAY1, DAY2) is None
    empty = await sql_repo.breakdown(None, "os", DAY1, DAY2)
    assert empty is not None and (empty.items, empty.other) == ((), 0)


async def test_distinct_values_beyond_top_n_fold_into_other(database_url: str) -> None:
    repo = SqlRepository.from_url(database_url, breakdown_top_n=5)
    try:
        b = (await repo.create_banner(banner_in(1))).id
        flood = [click(b, DAY1, referrer_host=f"spam{i}.example") for i in range(200)]
        for lo in range(0, 200, 40):
            await repo.record_clicks(flood[lo : lo + 40])
        # A second process (a fresh repository) re-reads the table: the bound holds.
        again = SqlRepository.from_url(database_url, breakdown_top_n=5)
        try:
            await again.record_clicks([click(b, DAY1, referrer_host="late.example")])
        finally:
            await again.close()
        async with repo.engine.connect() as conn:
            n = (
                await conn.execute(
                    select(func.count()).where(click_breakdowns.c.dimension == "referrer")
                )
            ).scalar_one()
        assert n == 5 + 1  # five values and "(other)"
        got = await repo.breakdown(b, "referrer", DAY1, DAY1, limit=100)
        assert got is not None
        assert len(got.items) == 5 and all(i.clicks == 1 for i in got.items)
        assert got.other == 196
        assert OTHER_VALUE not in {i.value for i in got.items}
    finally:
        await repo.close()


async def test_device_browser_and_os_rows_old_and_new_sum_to_the_clicks(database_url: str) -> None:
    """A click's device, browser and OS share one ``agent`` row while the day has room for
    its triple; past the top N, and in rows an older writer left, they have rows of their
    own and a day-total row. Every breakdown must still equal the clicks: here a day holds
    all three kinds, written by two processes, in batches of either PostgreSQL shape (a
    visitor twice in a batch takes the two-statement one)."""
    repo = SqlRepository.from_url(database_url, breakdown_top_n=3, dedup_window=60)
    again = SqlRepository.from_url(database_url, breakdown_top_n=3, dedup_window=60)
    try:
        b = (await repo.create_banner(banner_in(1))).id
        # What an older writer left for the day: 4 clicks, 3 of them from a mobile.
        old = [("*", "*", 4, 3), ("device", "mobile", 3, 2), ("os", "Android", 3, 2)]
        async with repo.engine.begin() as conn:
            await conn.execute(
                click_breakdowns.insert(),
                [
                    {"banner_id": b, "day": DAY1.date(), "dimension": d, "value": v}
                    | {"clicks": n, "valid_clicks": valid}
                    for d, v, n, valid in old
                ],
            )
        rng = random.Random(3)
        sent: list[ClickIn] = []
        for i in range(160):
            facts = ClickFacts(
                device=rng.choice(["desktop", "mobile", None]),
                browser=rng.choice(["Firefox", "Chrome", "Safari", None]),
                os=rng.choice(["Linux", "Android", "iOS", None]),
                country=rng.choice(["DE", None]),
            )
            sent.append(
                ClickIn(
                    banner_id=b,
                    occurred_at=DAY1 - timedelta(seconds=i),
                    visitor=f"{rng.randrange(40):064d}",
                    bot=i % 9 == 0,
                    facts=facts,
                )
            )
        for n, lo in enumerate(range(0, len(sent), 20)):
            await (repo if n % 2 else again).record_clicks(sent[lo : lo + 20])
        async with repo.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(click_breakdowns.c.dimension, func.count()).group_by(
                        click_breakdowns.c.dimension
                    )
                )
            ).all()
        per_dimension = dict(rows)
        assert 1 <= per_dimension["agent"] <= 3 * 2  # top N per process
        assert per_dimension["*"] == 1 and per_dimension["device"] > 1  # past the top N
        for by in ("device", "browser", "os", "country"):
            got = await repo.breakdown(b, by, DAY1, DAY1, limit=100)
            assert got is not None and got.other == 0
            want = Counter((c.facts.value(by) if c.facts else None) or NONE_VALUE for c in sent)
            want[NONE_VALUE] += 4 if by in ("browser", "country") else 1
            if by == "device":
                want["mobile"] += 3
            if by == "os":
                want["Android"] += 3
            assert {i.value: i.clicks for i in got.items} == +want, by
    finally:
        await repo.close()
        await again.close()


async def test_cached_breakdown_is_invalidated_by_clicks(sql_repo: SqlRepository) -> None:
    cached = CachedRepository(sql_repo, MemoryCache(max_entries=1000))
    a = (await cached.create_banner(banner_in(1))).id
    b = (await cached.create_banner(banner_in(2))).id
    now = datetime.now(UTC)
    start = now - timedelta(days=1)
    await cached.record_clicks([click(a, now, country="DE")])
    first = await cached.breakdown(a, "country", start, now)
    overview = await cached.breakdown(None, "country", start, now)
    other_banner = await cached.breakdown(b, "country", start, now)
    assert first is not None and overview is not None and other_banner is not None
    before = sql_repo.queries.count
    assert await cached.breakdown(a, "country", start, now + timedelta(seconds=5)) is first
    assert sql_repo.queries.count == before  # a hit, same whole-day key

    await cached.record_clicks([click(a, now, country="DE")])
    fresh = await cached.breakdown(a, "country", start, now)
    fresh_all = await cached.breakdown(None, "country", start, now)
    assert fresh is not None and fresh.items[0].clicks == 2
    assert fresh_all is not None and fresh_all.items[0].clicks == 2
    # Banner b's breakdown was not touched by a's click.
    assert await cached.breakdown(b, "country", start, now) is other_banner
    assert "breakdown" in cached.cache.stats().namespaces
    assert await cached.invalidate_namespace("breakdown") >= 1


HTTP_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)


async def test_http_breakdowns_from_tracking_link(client: AsyncTestClient[Litestar]) -> None:
    b = (await make_banner(client, name="b"))["id"]
    for _ in range(2):
        r = await client.get(
            f"/c/{b}?utm_source=newsletter&utm_medium=email&utm_campaign=black-friday",
            headers={"User-Agent": HTTP_UA, "Referer": "https://www.google.com/search?q=x"},
            follow_redirects=False,
        )
        assert r.status_code == 302
    # Server-to-server: the end user's address (with a token) and the utm of the POST URL.
    r = await client.post(
        f"/api/v1/banners/{b}/clicks?utm_source=partner",
        json={"ip": "81.2.69.160", "user_agent": HTTP_UA, "referrer": "https://t.co/x"},
        headers=ADMIN,
    )
    assert r.status_code in (201, 202), r.text
    expected = {
        "referrer": {"google.com": 2, "t.co": 1},
        "utm_source": {"newsletter": 2, "partner": 1},
        "utm_campaign": {"black-friday": 2, NONE_VALUE: 1},
        "country": {"GB": 1, NONE_VALUE: 2},  # the test client has no IP address
        "device": {"mobile": 3},
        "os": {"iOS": 3},
        "browser": {"Mobile Safari": 3},
    }
    for by, items in expected.items():
        r = await client.get(f"/api/v1/banners/{b}/breakdown", params={"by": by})
        assert r.status_code == 200, r.text
        body = r.json()
        assert {i["value"]: i["clicks"] for i in body["items"]} == items, by
        assert set(body) == {"banner_id", "by", "from", "to", "items", "other"}
        assert (body["banner_id"], body["by"], body["other"]) == (b, by, 0)
    r = await client.get("/api/v1/breakdown", params={"by": "referrer", "limit": 1})
    assert r.status_code == 200
    body = r.json()
    assert body["banner_id"] is None
    assert body["items"] == [{"value": "google.com", "clicks": 2}] and body["other"] == 1


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"by": "colour"},
        {"by": "os", "limit": "0"},
        {"by": "os", "limit": "101"},
        {"by": "os", "count": "some"},
        {"by": "os", "from": "yesterday"},
        {"by": "os", "from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
        {"by": "os", "from": "0001-01-01T00:00:00Z"},
    ],
)
async def test_http_breakdown_bad_input_is_400_json(
    shared_client: AsyncTestClient[Litestar], query: dict[str, str]
) -> None:
    for path in ("/api/v1/breakdown", "/api/v1/banners/1/breakdown"):
        r = await shared_client.get(path, params=query)
        assert r.status_code == 400, (path, query, r.text)
        assert set(r.json()["error"]) >= {"code", "message"}


async def test_http_breakdown_of_missing_banner_is_404(client: AsyncTestClient[Litestar]) -> None:
    r = await client.get("/api/v1/banners/424242/breakdown", params={"by": "os"})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_migration_backfills_breakdowns_from_old_clicks(unmigrated_url: str) -> None:
    engine = create_engine(unmigrated_url)
    try:
        await upgrade(engine, "0003")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO banners (name, image_url, target_url, active, forward_query, "
                    "created_at, updated_at) VALUES ('old', 'https://a.example/i', "
                    "'https://a.example', true, true, :t, :t)"
                ),
                {"t": DAY1},
            )
            await conn.execute(
                text(
                    "INSERT INTO banner_totals (banner_id, total_clicks) SELECT id, 3 FROM banners"
                )
            )
            for ua, ref, bot in [
                (HTTP_UA, "https://www.google.com/x", False),
                (HTTP_UA, "https://t.co/y", False),
                ("Googlebot/2.1 (+http://www.google.com/bot.html)", None, True),
            ]:
                await conn.execute(
                    text(
                        "INSERT INTO clicks (banner_id, occurred_at, user_agent, referrer, bot) "
                        "SELECT id, :t, :ua, :ref, :bot FROM banners"
                    ),
                    {
                        "t": DAY1.replace(tzinfo=None) if engine.dialect.name == "sqlite" else DAY1,
                        "ua": ua,
                        "ref": ref,
                        "bot": bot,
                    },
                )
        await upgrade(engine)
        repo = SqlRepository(engine)
        ref = await repo.breakdown(1, "referrer", DAY1, DAY1)
        assert ref is not None
        assert {i.value: i.clicks for i in ref.items} == {
            "google.com": 1,
            "t.co": 1,
            NONE_VALUE: 1,
        }
        device = await repo.breakdown(1, "device", DAY1, DAY1, "valid")
        assert device is not None and {i.value: i.clicks for i in device.items} == {"mobile": 2}
        country = await repo.breakdown(1, "country", DAY1, DAY1)
        assert country is not None and [(i.value, i.clicks) for i in country.items] == [
            (NONE_VALUE, 3)
        ]
        async with engine.connect() as conn:
            oses = (await conn.execute(select(clicks.c.os).order_by(clicks.c.id))).scalars()
            assert list(oses) == ["iOS", "iOS", None]
    finally:
        await engine.dispose()


async def test_demo_data_has_real_breakdowns(database_url: str) -> None:
    rng = random.Random(3)
    now = datetime.now(UTC)
    start = now - timedelta(days=3)
    sql_repo = SqlRepository.from_url(database_url, clock=lambda: start)  # banners made then
    try:
        await _demo_breakdowns(sql_repo, rng, start, now)
    finally:
        await sql_repo.close()


async def _demo_breakdowns(
    sql_repo: SqlRepository, rng: random.Random, start: datetime, now: datetime
) -> None:
    from bannertrack.cli.demo import DemoTally, create_banners, generate_clicks

    banners = await create_banners(sql_repo, 3, rng)
    async for batch in generate_clicks(banners, 600, now, rng, DemoTally(), batch_size=300):
        await sql_repo.record_clicks(batch)

    async def values(by: Dimension) -> dict[str, int]:
        got = await sql_repo.breakdown(None, by, start, now, limit=100)
        assert got is not None
        assert sum(i.clicks for i in got.items) + got.other == 600
        return {i.value: i.clicks for i in got.items}

    assert len(set(await values("country")) - {NONE_VALUE}) >= 8
    assert {"mobile", "desktop", "tablet"} <= set(await values("device"))
    assert {"black-friday", "winter-sale"} <= set(await values("utm_campaign"))
    referrers = await values("referrer")
    referrers.pop(NONE_VALUE)  # direct visits
    assert max(referrers, key=referrers.__getitem__) == "google.com"
    assert {"Mobile Safari", "Chrome Mobile", "Chrome", "Firefox"} <= set(await values("browser"))


async def test_repeats_are_not_valid_and_retention_keeps_the_rollup(
    database_url: str,
) -> None:
    repo = SqlRepository.from_url(database_url, dedup_window=3600)
    try:
        b = (await repo.create_banner(banner_in(1))).id
        facts = ClickFacts(country="NL", device="mobile")
        same_visitor = [
            ClickIn(banner_id=b, occurred_at=DAY1 + timedelta(seconds=s), visitor="v1", facts=facts)
            for s in (0, 10)
        ]
        recorded = await repo.record_clicks(same_visitor)
        assert [r.repeat for r in recorded if r] == [False, True]
        before = await repo.breakdown(b, "country", DAY1, DAY1, "valid")
        total = await repo.breakdown(b, "country", DAY1, DAY1)
        assert before is not None and total is not None
        assert [(i.value, i.clicks) for i in before.items] == [("NL", 1)]
        assert [(i.value, i.clicks) for i in total.items] == [("NL", 2)]

        assert await repo.delete_clicks_before(b, DAY2 + timedelta(days=1), 100) == 2
        assert await repo.breakdown(b, "country", DAY1, DAY1) == total

        assert await repo.delete_banner(b)
        assert await repo.breakdown(b, "country", DAY1, DAY1) is None
        overview = await repo.breakdown(None, "country", DAY1, DAY1)
        assert overview is not None and overview.items == ()  # the rollup rows went with it
    finally:
        await repo.close()


async def stale_breakdown_reads(
    repo: CachedRepository, ids: list[int], seed: int, race: WriteRace | None = None
) -> int:
    """Clicks are recorded while breakdowns are read; a read that started after a write
    returned and shows fewer clicks than were acknowledged is stale. ``race`` (with
    ``RacedReads`` under the cache) is told when each write begins and is acknowledged."""
    race = race or WriteRace()
    rng = random.Random(seed)
    acked = dict.fromkeys(ids, 0)
    now = datetime.now(UTC)
    start = now - timedelta(days=1)
    stale = 0

    async def writer() -> None:
        for _ in range(40):
            b = rng.choice(ids)
            n = rng.randint(1, 3)
            write = race.begin()
            await repo.record_clicks([click(b, now, country="SE") for _ in range(n)])
            acked[b] += n
            await race.acked(write)
            await asyncio.sleep(rng.random() * 0.002)  # jitter: vary the interleavings

    async def reader() -> None:
        nonlocal stale
        for _ in range(60):
            b = rng.choice(ids)
            one, every = acked[b], sum(acked.values())
            if rng.random() < 0.5:
                got = await repo.breakdown(b, "country", start, now)
                floor = one
            else:
                got = await repo.breakdown(None, "country", start, now)
                floor = every
            assert got is not None
            stale += sum(i.clicks for i in got.items) + got.other < floor

    async def writers() -> None:
        await asyncio.gather(writer(), writer())
        await race.close()

    await asyncio.gather(writers(), *(reader() for _ in range(8)))
    return stale


async def test_no_stale_breakdown_after_a_click_returned(sql_repo: SqlRepository) -> None:
    ids = [(await sql_repo.create_banner(banner_in(i))).id for i in range(3)]
    repo = CachedRepository(SlowReads(sql_repo, max_delay=0.004, seed=5), MemoryCache())
    assert await stale_breakdown_reads(repo, ids, seed=5) == 0


async def test_the_stale_breakdown_check_catches_a_naive_cache(sql_repo: SqlRepository) -> None:
    """Negative control: the same harness over a cache that stores whatever a load read.

    Every load is made to race a write (``RacedReads``), so the naive cache is caught
    however fast the database writes (with random delays alone it was not, once the
    PostgreSQL click batch got faster).
    """
    ids = [(await sql_repo.create_banner(banner_in(i))).id for i in range(3)]
    race = WriteRace()
    repo = CachedRepository(RacedReads(sql_repo, race), NaiveCache())
    assert await stale_breakdown_reads(repo, ids, seed=5, race=race) > 0


async def test_no_stale_breakdown_when_every_load_races_a_write(sql_repo: SqlRepository) -> None:
    """The positive side of the same forced race: the real cache stays exact under it."""
    ids = [(await sql_repo.create_banner(banner_in(i))).id for i in range(3)]
    race = WriteRace()
    repo = CachedRepository(RacedReads(sql_repo, race), MemoryCache())
    assert await stale_breakdown_reads(repo, ids, seed=5, race=race) == 0


async def test_migration_0006_turns_none_rows_into_day_totals_and_back(
    unmigrated_url: str,
) -> None:
    """0006 replaces the "(none)" rows by one day-total row per (banner, day); every
    breakdown reads the same before and after, and downgrading restores the rows."""
    from alembic import command

    from bannertrack.db.migrate import alembic_config

    engine = create_engine(unmigrated_url)
    rows_sql = text(
        "SELECT banner_id, day, dimension, value, clicks, valid_clicks FROM click_breakdowns "
        "ORDER BY banner_id, day, dimension, value"
    )

    async def table() -> list[tuple[object, ...]]:
        async with engine.connect() as conn:
            return [tuple(r) for r in await conn.execute(rows_sql)]

    def downgrade_to(connection: object, revision: str) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)

    try:
        await upgrade(engine, "0005")
        async with engine.begin() as conn:
            now = DAY1.replace(tzinfo=None) if engine.dialect.name == "sqlite" else DAY1
            await conn.execute(
                text(
                    "INSERT INTO banners (name, image_url, target_url, active, forward_query, "
                    "created_at, updated_at) VALUES ('a', 'https://a.example/i', "
                    "'https://a.example', true, true, :t, :t)"
                ),
                {"t": now},
            )
            # 5 clicks on one day, as 0005's writer stored them: each dimension sums to 5.
            day = DAY1.date()
            stored = [("device", "mobile", 3, 2), ("device", "desktop", 2, 1)]
            stored += [("referrer", "t.co", 1, 1), ("referrer", NONE_VALUE, 4, 2)]
            stored += [(d, NONE_VALUE, 5, 3) for d in DIMENSIONS if d not in ("device", "referrer")]
            for dimension, value, n, valid in stored:
                await conn.execute(
                    text(
                        "INSERT INTO click_breakdowns (banner_id, day, dimension, value, clicks, "
                        "valid_clicks) VALUES (1, :day, :dim, :value, :n, :valid)"
                    ),
                    {"day": day, "dim": dimension, "value": value, "n": n, "valid": valid},
                )
        before = await table()
        await upgrade(engine)
        after = await table()
        assert not [r for r in after if r[3] == NONE_VALUE]
        assert [r for r in after if r[2] == "*"] == [(1, after[0][1], "*", "*", 5, 3)]
        repo = SqlRepository(engine)
        for dimension in DIMENSIONS:
            for count in ("total", "valid"):
                got = await repo.breakdown(1, dimension, DAY1, DAY1, count)  # type: ignore[arg-type]
                assert got is not None
                want = {
                    v: (n if count == "total" else ok)
                    for d, v, n, ok in stored
                    if d == dimension and (n if count == "total" else ok)
                }
                assert {i.value: i.clicks for i in got.items} == want, (dimension, count)
        async with engine.begin() as conn:
            await conn.run_sync(downgrade_to, "0005")
        assert await table() == before
    finally:
        await engine.dispose()


@pytest.mark.parametrize("path", ["main", "other"])
async def test_a_click_counts_on_its_utc_day_whatever_its_zone(
    database_url: str, backend: str, path: str
) -> None:
    """23:30 at UTC-8 is 07:30 the next day in UTC: the day's rollup row is the UTC day,
    on every write path: SQLite's writer thread ("main") and SQLAlchemy's ("other"),
    PostgreSQL's one-statement batch ("main") and its two-statement one ("other", taken
    when a visitor clicks twice in a batch)."""
    # SQLite's "other" path: the SQLAlchemy one, without the writer thread.
    sqlite_writer = not (path == "other" and backend == "sqlite")
    repo = SqlRepository.from_url(database_url, sqlite_writer=sqlite_writer)
    local = datetime(2026, 11, 20, 23, 30, tzinfo=timezone(-timedelta(hours=8)))
    try:
        b = (await repo.create_banner(banner_in(1))).id
        sent = [
            ClickIn(banner_id=b, occurred_at=local, visitor="v", facts=ClickFacts(country="DE"))
        ]
        if path == "other" and backend != "sqlite":
            sent.append(sent[0])
        assert local.date() == DAY1.date() and local.astimezone(UTC).date() == DAY2.date()
        await repo.record_clicks(sent)
        async with repo.engine.connect() as conn:
            days = (await conn.execute(select(click_breakdowns.c.day).distinct())).scalars()
            assert list(days) == [DAY2.date()]
        got = await repo.breakdown(b, "country", DAY2, DAY2, limit=10)
        assert got is not None and [(i.value, i.clicks) for i in got.items] == [("DE", len(sent))]
    finally:
        await repo.close()
