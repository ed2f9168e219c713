"""Click ingest over HTTP: group commit against one commit per click, SQLite and PostgreSQL.

Real server processes (``python -m bannertrack api``, granian + Litestar, one worker) are
started here, one per backend and mode, and driven by the raw-socket keep-alive client of
``bench/_http.py`` with ``POST /api/v1/banners/{id}/clicks``:

- ``group``: the defaults (max_batch 1000, max_wait 2 ms);
- ``group, no linger``: max_wait 0, batches form only while the previous one commits;
- ``per-click``: max_batch 1, max_wait 0, one transaction and COMMIT per click;
- ``bare HTTP``: a Litestar app whose click endpoint parses the same body and answers
  201 without doing anything, served by granian the same way: the ceiling of the HTTP
  layer plus this client on this machine;
- ``impressions``: ``GET /i/{id}`` against the ``group`` server of each backend (the
  pixel: summed in memory, written every 0.5 s). After each run the stored impression
  count must reach the number of 200s within a few seconds.

Runs are interleaved (every mode once per round) so drift on a shared machine hits all
modes alike. After every run the stored click count must equal the number of 201s.

    .venv/bin/python bench/ingest.py [--runs 3] [--duration 5] [--connections 64]

PostgreSQL is a throwaway ``pgserver`` unless ``BANNERTRACK_BENCH_DATABASE_URL`` names a
server (a database is created in it per mode and dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from _http import LoadResult, request_bytes, run  # noqa: E402
from _servers import (  # noqa: E402
    ADMIN_TOKEN,
    INGEST_TOKEN,
    Server,
    bannertrack_server,
    bare_server,
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
)

N_BANNERS = 20
REPORTER = {"Authorization": f"Bearer {INGEST_TOKEN}"}  # click reports need the ingest token

MODES: dict[str, dict[str, str]] = {
    "group": {},
    "group, no linger": {"BANNERTRACK_INGEST_MAX_WAIT": "0"},
    "per-click": {"BANNERTRACK_INGEST_MAX_BATCH": "1", "BANNERTRACK_INGEST_MAX_WAIT": "0"},
}


# the database, seen from the benchmark ---------------------------------------------------


async def stored_clicks(database_url: str) -> int:
    from sqlalchemy import func, select

    from bannertrack.db.engine import create_engine
    from bannertrack.db.tables import clicks

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(clicks))).scalar_one())
    finally:
        await engine.dispose()


def create_banners(url: str) -> list[int]:
    ids = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
        for i in range(N_BANNERS):
            r = c.post(
                "/api/v1/banners",
                json={
                    "name": f"bench {i}",
                    "image_url": f"https://ads.example/{i}.png",
                    "target_url": f"https://shop.example/{i}",
                },
            )
            r.raise_for_status()
            ids.append(int(r.json()["id"]))
    return ids


def click_requests(banner_ids: list[int]) -> list[bytes]:
    """Varied clicks (banner, visitor address) so hashing and rollups do real work."""
    out = []
    for i in range(1000):
        body = msgspec.json.encode(
            {"ip": f"198.51.{i % 200}.{i % 250}", "user_agent": f"Mozilla/5.0 bench/{i % 7}"}
        )
        path = f"/api/v1/banners/{banner_ids[i % len(banner_ids)]}/clicks"
        out.append(request_bytes("POST", path, body=body, headers=REPORTER))
    return out


def ingest_stats(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/healthz", timeout=5).json()["checks"]["ingest"])


# the runs --------------------------------------------------------------------------------


@dataclass
class Target:
    backend: str
    mode: str
    server: Server
    database_url: str | None = None
    requests: list[bytes] = field(default_factory=list)
    results: list[LoadResult] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    batches: int = 0
    written: int = 0


async def stored_impressions(database_url: str) -> int:
    from sqlalchemy import func, select

    from bannertrack.db.engine import create_engine
    from bannertrack.db.tables import impression_minutes

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            total = select(func.coalesce(func.sum(impression_minutes.c.impressions), 0))
            return int((await conn.execute(total)).scalar_one())
    finally:
        await engine.dispose()


async def one_run(t: Target, connections: int, duration: float) -> LoadResult:
    if t.mode == "impressions":
        return await impressions_run(t, connections, duration)
    before = await stored_clicks(t.database_url) if t.database_url else 0
    result = await run(
        "127.0.0.1", t.server.port, t.requests, connections=connections, duration=duration
    )
    if t.database_url:
        after = await stored_clicks(t.database_url)
        acked = result.count(201)
        stored = after - before
        # A request without a response (reset, timeout) may or may not be stored.
        if not acked <= stored <= acked + result.errors:
            t.mismatches.append(f"stored {stored}, acknowledged {acked}, {result.errors} errors")
    return result


async def impressions_run(t: Target, connections: int, duration: float) -> LoadResult:
    assert t.database_url
    before = await stored_impressions(t.database_url)
    result = await run(
        "127.0.0.1", t.server.port, t.requests, connections=connections, duration=duration
    )
    answered = result.count(200)
    deadline = time.monotonic() + 5  # flushed every 0.5 s in the background
    while (stored := await stored_impressions(t.database_url) - before) < answered:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    if not answered <= stored <= answered + result.errors:
        t.mismatches.append(f"stored {stored} impressions, answered {answered}")
    return result


def summarise(targets: list[Target], baseline: dict[str, float], bare: float) -> str:
    lines = [
        "| backend | mode | per second (median) | range | p50 ms | p99 ms | mean batch "
        "| vs per-click | of bare HTTP |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in targets:
        rates = [r.rate for r in t.results]
        med = statistics.median(rates)
        p50 = statistics.median(r.percentile(50) for r in t.results) * 1000
        p99 = statistics.median(r.percentile(99) for r in t.results) * 1000
        batch = f"{t.written / t.batches:.1f}" if t.batches else "-"
        base = baseline.get(t.backend)
        ratio = f"{med / base:.1f}x" if base and t.backend != "-" and t.mode in MODES else "-"
        # The bare app answers the click POST; a pixel GET is another request shape.
        share = f"{med / bare:.0%}" if bare and t.mode != "impressions" else "-"
        lines.append(
            f"| {t.backend} | {t.mode} | {med:,.0f} | {min(rates):,.0f}-{max(rates):,.0f} "
            f"| {p50:.1f} | {p99:.1f} | {batch} | {ratio} | {share} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace, work: Path) -> int:
    started = time.monotonic()
    targets: list[Target] = []
    created_pg: list[str] = []
    backends = [b for b in ("sqlite", "postgresql") if b in args.backends]
    with contextlib.ExitStack() as stack:
        pg_admin = stack.enter_context(postgres_admin_url()) if "postgresql" in backends else ""
        bare = bare_server(work / "bare.log").start()
        stack.callback(bare.stop)
        targets.append(Target("-", "bare HTTP", bare))
        for backend in backends:
            for mode, env in MODES.items():
                slug = f"{backend}-{mode.replace(', ', '-').replace(' ', '-')}"
                if backend == "sqlite":
                    url = f"sqlite:///{work / slug}.db"
                else:
                    url = await create_postgres_database(pg_admin)
                    created_pg.append(url)
                server = bannertrack_server(url, env, work / f"{slug}.log").start()
                stack.callback(server.stop)
                targets.append(Target(backend, mode, server, url))
                if mode == "group":
                    targets.append(Target(backend, "impressions", server, url))
        try:
            banners: dict[int, list[int]] = {}
            for t in targets:
                if id(t.server) not in banners:
                    banners[id(t.server)] = (
                        create_banners(t.server.url) if t.database_url else list(range(1, 21))
                    )
                ids = banners[id(t.server)]
                t.requests = (
                    [request_bytes("GET", f"/i/{i}") for i in ids]
                    if t.mode == "impressions"
                    else click_requests(ids)
                )
                await one_run(t, args.connections, 1.0)  # warm-up: pools, caches, JIT-less paths
            for round_no in range(args.runs):
                if time.monotonic() - started > args.max_seconds:
                    print(f"time budget spent; stopping after {round_no} rounds", file=sys.stderr)
                    break
                for t in targets:
                    t.results.append(await one_run(t, args.connections, args.duration))
                    r = t.results[-1]
                    print(
                        f"round {round_no + 1} {t.backend:>10} {t.mode:<17} {r.rate:8,.0f}/s "
                        f"p99 {r.percentile(99) * 1000:6.1f} ms  {dict(r.statuses)} "
                        f"errors {r.errors}",
                        file=sys.stderr,
                    )
            for t in targets:
                if t.database_url and t.mode != "impressions":
                    s = ingest_stats(t.server.url)
                    t.batches, t.written = s["batches_written"], s["clicks_written"]
        finally:
            for t in reversed(targets):
                t.server.stop()
            for url in created_pg:
                await drop_postgres_database(pg_admin, url)

    baseline = {
        t.backend: statistics.median(r.rate for r in t.results)
        for t in targets
        if t.mode == "per-click" and t.results
    }
    bare_rate = statistics.median(r.rate for r in targets[0].results) if targets[0].results else 0
    print(
        f"\n{platform.node()} - {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"{args.connections} connections, {len(targets[0].results)} runs of {args.duration:g}s "
        f"per mode, medians\n"
    )
    print(summarise([t for t in targets if t.results], baseline, bare_rate))
    bad = [(t, m) for t in targets for m in t.mismatches]
    for t, m in bad:
        print(f"MISMATCH {t.backend} {t.mode}: {m}")
    if not bad:
        print(
            "\nevery run: stored clicks == acknowledged (201) clicks, "
            "stored impressions == answered (200) pixels"
        )
    return 1 if bad else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="measured rounds per mode")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--max-seconds", type=float, default=480, help="stop starting rounds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bt-bench-ingest-") as work:
        code = asyncio.run(main_async(args, Path(work)))
    sys.exit(code)


if __name__ == "__main__":
    main()
