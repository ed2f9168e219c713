"""The read path over HTTP with the cache and without it, against a bare Litestar handler.

One PostgreSQL database holds 1,000 banners and a few hundred thousand clicks (the demo
generator: Zipf popularity, two weeks, daytime peaks). Real server processes are started
on it (``python -m bannertrack api``, one granian worker each):

- ``cache``: the defaults;
- ``no cache``: ``BANNERTRACK_CACHE_ENABLED=false``, every read from PostgreSQL;
- ``bare``: a Litestar handler returning a constant, served by granian the same way.

The workload is read-heavy and skewed like real traffic: banner ids drawn from a
Zipf(1.0) law over the 1,000 banners; 50% ``/with-stats``, 30% ``/top`` (limit 10, 5 or
20), 10% ``/banners/{id}``, 10% ``/stats``. Each target gets a short warm-up run (not
measured: it is the start of the cache's steady state, and the uncached server's
connection pool), then the targets are measured in interleaved rounds so drift on a
shared machine hits all alike. Database queries per request and the hit rate come from
the server's own ``/metrics`` and ``/api/v1/cache/stats``, read before and after each run.

    .venv/bin/python bench/http_cache.py [--clicks 300000] [--runs 3] [--duration 5]

The client (bench/_http.py) runs on the same 2 cores as the server and PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from _http import LoadResult, request_bytes, run  # noqa: E402
from _servers import (  # noqa: E402
    Server,
    bannertrack_server,
    bare_server,
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
)

N_BANNERS = 1000


async def populate(url: str, n_clicks: int) -> list[int]:
    from datetime import timedelta

    from bannertrack.bootstrap import open_database
    from bannertrack.cli.demo import DemoTally, create_banners, generate_clicks
    from bannertrack.config import load_settings
    from bannertrack.timeutil import utcnow

    rng = random.Random(20261124)
    now = utcnow()
    # Banners are dated at the period's start, so no generated click predates its banner.
    settings = load_settings(database_url=url)
    clock = lambda: now - timedelta(days=14)  # noqa: E731
    async with open_database(settings, migrate=True, clock=clock) as repo:
        banners = await create_banners(repo, N_BANNERS, rng)
        ids = [b.id for b in banners]
        done = 0
        clicks = generate_clicks(banners, n_clicks, now, rng, DemoTally(), batch_size=5000)
        async for batch in clicks:
            await repo.record_clicks(batch)
            done += len(batch)
            print(f"\rloading clicks {done:,}/{n_clicks:,}", end="", file=sys.stderr)
        print(file=sys.stderr)
    return ids


def workload(ids: list[int], n: int = 20_000) -> list[bytes]:
    """Zipf(1.0) over the banners (most popular first), the endpoint mix of the docstring."""
    rng = random.Random(7)
    cum = []
    total = 0.0
    for rank in range(len(ids)):
        total += 1 / (rank + 1)
        cum.append(total)
    out = []
    for _ in range(n):
        banner = rng.choices(ids, cum_weights=cum)[0]
        pick = rng.random()
        if pick < 0.5:
            path = f"/api/v1/banners/{banner}/with-stats"
        elif pick < 0.8:
            path = f"/api/v1/banners/top?limit={rng.choice((10, 10, 10, 5, 20))}"
        elif pick < 0.9:
            path = f"/api/v1/banners/{banner}"
        else:
            path = f"/api/v1/banners/{banner}/stats"
        out.append(request_bytes("GET", path))
    return out


def db_queries(url: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("bannertrack_db_queries_total "):
            return float(line.split()[1])
    raise RuntimeError("no bannertrack_db_queries_total in /metrics")


def cache_counts(url: str) -> tuple[int, int]:
    body = httpx.get(f"{url}/api/v1/cache/stats", timeout=5).json()
    if not body.get("enabled"):
        return 0, 0
    return int(body["hits"]), int(body["misses"])


@dataclass
class Target:
    name: str
    server: Server
    requests: list[bytes]
    service: bool = True
    results: list[LoadResult] = field(default_factory=list)
    queries_per_request: list[float] = field(default_factory=list)
    hit_rates: list[float] = field(default_factory=list)


async def one_run(t: Target, connections: int, duration: float, record: bool) -> None:
    if t.service:
        q0, (h0, m0) = db_queries(t.server.url), cache_counts(t.server.url)
    result = await run(
        "127.0.0.1", t.server.port, t.requests, connections=connections, duration=duration
    )
    bad = sum(n for status, n in result.statuses.items() if status != 200)
    if bad or result.errors:
        raise RuntimeError(f"{t.name}: {dict(result.statuses)}, {result.errors} errors")
    if not record:
        return
    t.results.append(result)
    if t.service:
        q1, (h1, m1) = db_queries(t.server.url), cache_counts(t.server.url)
        # The two /metrics and /stats reads themselves are not database queries.
        t.queries_per_request.append((q1 - q0) / result.responses)
        if h1 + m1 - h0 - m0:
            t.hit_rates.append((h1 - h0) / (h1 + m1 - h0 - m0))


def table(targets: list[Target]) -> str:
    bare = statistics.median(r.rate for r in targets[0].results)
    uncached = next(t for t in targets if t.name == "no cache")
    base_q = statistics.median(uncached.queries_per_request)
    lines = [
        "| target | req/s (median) | range | p50 ms | p99 ms | DB queries/req "
        "| DB reads cut | hit rate | share of bare req/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in targets:
        rates = [r.rate for r in t.results]
        med = statistics.median(rates)
        p50 = statistics.median(r.percentile(50) for r in t.results) * 1000
        p99 = statistics.median(r.percentile(99) for r in t.results) * 1000
        q = statistics.median(t.queries_per_request) if t.queries_per_request else None
        cut = f"{(1 - q / base_q):.2%}" if q is not None and t is not uncached else "-"
        hit = f"{statistics.median(t.hit_rates):.2%}" if t.hit_rates else "-"
        lines.append(
            f"| {t.name} | {med:,.0f} | {min(rates):,.0f}-{max(rates):,.0f} | {p50:.2f} "
            f"| {p99:.2f} | {'-' if q is None else f'{q:.4f}'} | {cut} | {hit} "
            f"| {med / bare:.0%} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace, work: Path) -> None:
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        admin = stack.enter_context(postgres_admin_url())
        url = await create_postgres_database(admin)
        try:
            t0 = time.monotonic()
            ids = await populate(url, args.clicks)
            print(f"loaded in {time.monotonic() - t0:.0f} s", file=sys.stderr)
            mix = workload(ids)
            with_stats = [r for r in mix if b"/with-stats" in r]
            targets = [
                Target("bare", bare_server(work / "bare.log"), [request_bytes("GET", "/const")],
                       service=False),
                Target("cache", bannertrack_server(url, {}, work / "cache.log"), mix),
                Target("cache, with-stats only",
                       bannertrack_server(url, {}, work / "cache-ws.log"), with_stats),
                Target("no cache", bannertrack_server(
                    url, {"BANNERTRACK_CACHE_ENABLED": "false"}, work / "nocache.log"), mix),
            ]  # fmt: skip
            for t in targets:
                t.server.start()
                stack.callback(t.server.stop)
            for t in targets:
                await one_run(t, args.connections, args.warmup, record=False)
            for round_no in range(args.runs):
                if time.monotonic() - started > args.max_seconds:
                    print(f"time budget spent after {round_no} rounds", file=sys.stderr)
                    break
                for t in targets:
                    await one_run(t, args.connections, args.duration, record=True)
                    r = t.results[-1]
                    print(
                        f"round {round_no + 1} {t.name:<24} {r.rate:9,.0f}/s "
                        f"p99 {r.percentile(99) * 1000:7.2f} ms",
                        file=sys.stderr,
                    )
            for t in targets:
                t.server.stop()
        finally:
            await drop_postgres_database(admin, url)
    print(
        f"\n{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"PostgreSQL with {N_BANNERS:,} banners and {args.clicks:,} clicks; "
        f"{args.connections} connections; {len(targets[0].results)} runs of "
        f"{args.duration:g} s per target after a {args.warmup:g} s warm-up; medians\n"
    )
    print(table(targets))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clicks", type=int, default=300_000, help="clicks to load")
    parser.add_argument("--runs", type=int, default=3, help="measured rounds")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--max-seconds", type=float, default=540, help="stop starting rounds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bt-bench-cache-") as work:
        asyncio.run(main_async(args, Path(work)))


if __name__ == "__main__":
    main()
