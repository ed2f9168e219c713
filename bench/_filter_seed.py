"""A million raw clicks over 30 days for ``bench/dashboard_filters.py``, cached in /tmp.

The clicks are drawn with the skew and the ties real traffic has: 50 banners (Zipf), 40
countries (Germany first, Zipf), 16 (device, browser, OS) triples as user agents give
them, and traffic sources that tie a referrer host to its utm tags (a newsletter has
no referrer and ``utm_source=newsletter``; Google has a referrer and no tags), with a
long tail of 400 publisher hosts; 3 % bots and 10 % repeats. Rows are as wide as the
service's own (a user agent, the referrer URL and a 32-character visitor key).

The seed is keyed by its clock (``SEED_NOW``, fixed, so a cached file stays valid), the
click count, ``VERSION`` and the head migration: SQLite keeps a file, PostgreSQL a
``pgserver`` data directory with one database per seed. Loading drops the click indexes,
inserts with ``executemany`` (SQLite) or ``COPY`` (PostgreSQL), rebuilds them, fills
``banner_totals`` and ``click_minutes`` from the raw rows (so unfiltered figures agree
with them) and runs ANALYZE. ``click_breakdowns`` stays empty: no fact-filtered read
uses it.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bannertrack.db.engine import DbTimeouts, create_engine
from bannertrack.db.migrate import upgrade
from bannertrack.db.tables import CLICK_VALUES, clicks

VERSION = 2  # 2: clicks in time order, as the service inserts them (ids grow with time)
SEED_NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAYS = 30
BANNERS = 50
CACHE = Path("/tmp/bt-filters-cache")
SLOW = DbTimeouts(statement=1800.0)  # building indexes on a million rows

COUNTRIES = (
    "DE", "US", "FR", "GB", "NL", "AT", "CH", "PL", "IT", "ES", "SE", "BE", "DK", "CZ",
    "NO", "FI", "IE", "PT", "HU", "RO", "CA", "AU", "JP", "BR", "IN", "MX", "TR", "GR",
    "SK", "SI", "HR", "LT", "LV", "EE", "LU", "BG", "UA", "RS", "IS", "MT",
)  # fmt: skip
CLIENTS = (
    ("desktop", "Chrome", "Windows"),
    ("mobile", "Mobile Safari", "iOS"),
    ("mobile", "Chrome Mobile", "Android"),
    ("desktop", "Safari", "Mac OS X"),
    ("desktop", "Edge", "Windows"),
    ("desktop", "Firefox", "Windows"),
    ("mobile", "Samsung Internet", "Android"),
    ("tablet", "Mobile Safari", "iOS"),
    ("desktop", "Chrome", "Mac OS X"),
    ("desktop", "Chrome", "Linux"),
    ("mobile", "Firefox Mobile", "Android"),
    ("desktop", "Firefox", "Linux"),
    ("tablet", "Chrome", "Android"),
    ("desktop", "Opera", "Windows"),
    ("mobile", "Opera Mobile", "Android"),
    ("desktop", "Yandex Browser", "Windows"),
)
AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
# (referrer host, utm_source, utm_medium, utm_campaign), most frequent first.
Source = tuple[str | None, str | None, str | None, str | None]


def _sources() -> list[Source]:
    named: list[Source] = [
        (None, None, None, None),  # typed, bookmarked, or a referrer the browser withheld
        ("www.google.com", None, None, None),
        (None, "newsletter", "email", "weekly-48"),
        ("l.facebook.com", "facebook", "social", "winter-sale"),
        (None, "newsletter", "email", "weekly-47"),
        ("t.co", "twitter", "social", None),
        ("www.bing.com", None, None, None),
        ("l.instagram.com", "instagram", "social", "winter-sale"),
        (None, "newsletter", "email", "weekly-46"),
        ("www.linkedin.com", "linkedin", "social", "b2b-q4"),
        ("duckduckgo.com", None, None, None),
        ("l.facebook.com", "facebook", "cpc", "retarget-1"),
        (None, "newsletter", "email", "weekly-45"),
        ("www.reddit.com", None, None, None),
        ("news.ycombinator.com", None, None, None),
        ("www.google.com", "google", "cpc", "brand"),
        ("www.google.com", "google", "cpc", "generic"),
        (None, "partner", "affiliate", "spring-deal"),
    ]
    tail: list[Source] = [
        (f"news-{i}.example", "partner" if i % 7 == 0 else None, None, None) for i in range(400)
    ]
    return named + tail


def _weights(n: int, s: float) -> list[float]:
    return [1 / (i + 1) ** s for i in range(n)]


def rows(n: int, seed: int = 29) -> Iterator[tuple[Any, ...]]:
    """``n`` clicks as tuples in ``CLICK_VALUES`` order, ``occurred_at`` aware UTC."""
    rng = random.Random(seed)
    sources = _sources()
    picks = {
        "banner": (list(range(1, BANNERS + 1)), _weights(BANNERS, 0.8)),
        "country": (list(COUNTRIES), _weights(len(COUNTRIES), 1.2)),
        "client": (list(CLIENTS), _weights(len(CLIENTS), 1.0)),
        "source": (sources, _weights(len(sources), 1.1)),
    }
    cum = {k: _cumulative(w) for k, (_, w) in picks.items()}
    span = DAYS * 86_400
    for i in range(n):
        banner = _pick(rng, picks["banner"][0], cum["banner"])
        country = _pick(rng, picks["country"][0], cum["country"]) if rng.random() < 0.96 else None
        device, browser, os = _pick(rng, picks["client"][0], cum["client"])
        host, source, medium, campaign = _pick(rng, picks["source"][0], cum["source"])
        bot = rng.random() < 0.03
        values = {
            "banner_id": banner,
            # In time order with jitter, uniform over the span: the service's ids grow with
            # time, and the SQLite pass estimates a range's rows from its ids.
            "occurred_at": SEED_NOW
            - timedelta(microseconds=int((n - i - rng.random()) * span * 1e6 / n)),
            "user_agent": AGENT,
            "referrer": None if host is None else f"https://{host}/articles/{rng.randint(1, 999)}",
            "visitor": f"{rng.getrandbits(128):032x}",
            "bot": bot,
            "bot_reason": "crawler" if bot else None,
            "repeat": (not bot) and rng.random() < 0.10,
            "country": country,
            "device": device,
            "browser": browser,
            "os": os,
            "referrer_host": host,
            "utm_source": source,
            "utm_medium": medium,
            "utm_campaign": campaign,
            "placement_id": None,
            "signature": None,
            "click_id": None,
        }
        yield tuple(values[name] for name in CLICK_VALUES)


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def _pick(rng: random.Random, values: list[Any], cum: list[float]) -> Any:
    return rng.choices(values, cum_weights=cum)[0]


def _banner_rows() -> list[dict[str, Any]]:
    made = SEED_NOW - timedelta(days=60)
    return [
        {
            "name": f"Banner {i}",
            "image_url": f"https://cdn.example/{i}.png",
            "target_url": f"https://shop.example/{i}",
            "active": True,
            "forward_query": True,
            "created_at": made,
            "updated_at": made,
        }
        for i in range(1, BANNERS + 1)
    ]


CLICK_INDEXES = tuple(ix.name for ix in clicks.indexes if ix.name != "ux_clicks_click_id")

_ROLLUPS = (
    "INSERT INTO banner_totals (banner_id, total_clicks, first_click_at, last_click_at, "
    "valid_clicks, bot_clicks, repeat_clicks, impressions) "
    "SELECT banner_id, COUNT(*), MIN(occurred_at), MAX(occurred_at), "
    "SUM(CASE WHEN bot OR repeat THEN 0 ELSE 1 END), SUM(CASE WHEN bot THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN repeat THEN 1 ELSE 0 END), 0 FROM clicks GROUP BY banner_id",
    "INSERT INTO click_minutes (banner_id, minute, clicks, valid_clicks, bot_clicks, "
    "repeat_clicks) SELECT banner_id, {minute}, COUNT(*), "
    "SUM(CASE WHEN bot OR repeat THEN 0 ELSE 1 END), SUM(CASE WHEN bot THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN repeat THEN 1 ELSE 0 END) FROM clicks GROUP BY banner_id, {minute}",
)
_MINUTE = {
    "sqlite": "strftime('%Y-%m-%d %H:%M:00.000000', occurred_at)",
    "postgresql": "date_trunc('minute', occurred_at)",
}


async def _schema(engine: AsyncEngine) -> None:
    from sqlalchemy import insert

    from bannertrack.db.tables import banners

    await upgrade(engine)
    async with engine.begin() as conn:
        await conn.execute(insert(banners), _banner_rows())
        for name in CLICK_INDEXES:
            await conn.execute(text(f"DROP INDEX {name}"))


async def _finish(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(
            lambda sync: [ix.create(sync) for ix in clicks.indexes if ix.name in CLICK_INDEXES]
        )
        for statement in _ROLLUPS:
            await conn.execute(text(statement.format(minute=_MINUTE[engine.dialect.name])))
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE"))


def _sqlite_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


async def sqlite_seed(n: int, head: str) -> tuple[Path, float]:
    """The cached SQLite file of ``n`` clicks (made now if missing); seconds spent making it."""
    CACHE.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a benchmark's set-up
    path = CACHE / f"sqlite-v{VERSION}-{head}-{n}.db"
    if path.exists():
        return path, 0.0
    t0 = time.perf_counter()
    work = path.with_suffix(".part")
    work.unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{work}", timeouts=SLOW)
    try:
        await _schema(engine)
        at = CLICK_VALUES.index("occurred_at")
        db = sqlite3.connect(work)
        marks = ", ".join("?" for _ in CLICK_VALUES)
        statement = f"INSERT INTO clicks ({', '.join(CLICK_VALUES)}) VALUES ({marks})"
        batch: list[tuple[Any, ...]] = []
        for row in rows(n):
            batch.append((*row[:at], _sqlite_time(row[at]), *row[at + 1 :]))
            if len(batch) == 50_000:
                db.executemany(statement, batch)
                batch = []
        db.executemany(statement, batch)
        db.commit()
        db.close()
        await _finish(engine)
    finally:
        await engine.dispose()
    work.rename(path)
    return path, time.perf_counter() - t0


async def postgres_seed(admin_url: str, n: int, head: str) -> tuple[str, float]:
    """The URL of the cached PostgreSQL database of ``n`` clicks; seconds spent making it."""
    import asyncpg
    from sqlalchemy.engine import make_url

    name = f"bt_filters_v{VERSION}_{head}_{n}"
    admin = make_url(admin_url)
    plain = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(plain)
    try:
        found = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if found:
            return admin.set(database=name).render_as_string(hide_password=False), 0.0
        await conn.execute(f"DROP DATABASE IF EXISTS {name}_part")
        await conn.execute(f"CREATE DATABASE {name}_part")
    finally:
        await conn.close()
    t0 = time.perf_counter()
    work = admin.set(database=f"{name}_part").render_as_string(hide_password=False)
    engine = create_engine(work, timeouts=SLOW)
    try:
        await _schema(engine)
        copy = await asyncpg.connect(
            make_url(work).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        try:
            batch: list[tuple[Any, ...]] = []
            for row in rows(n):
                batch.append(row)
                if len(batch) == 100_000:
                    await copy.copy_records_to_table("clicks", records=batch, columns=CLICK_VALUES)
                    batch = []
            await copy.copy_records_to_table("clicks", records=batch, columns=CLICK_VALUES)
        finally:
            await copy.close()
        await _finish(engine)
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(plain)
    try:
        await conn.execute(f"ALTER DATABASE {name}_part RENAME TO {name}")
    finally:
        await conn.close()
    return admin.set(database=name).render_as_string(hide_password=False), time.perf_counter() - t0
