"""Load and faults: what a hostile or broken world does to clicks, visitors and memory.

Real server processes (``python -m bannertrack api``, one worker) on 127.0.0.1, driven by
the raw-socket client of ``bench/_http.py``. Every phase is bounded in count and time and
the script stops by itself. It prints, per phase:

- ``kill``: clicks acknowledged (201 with an id) vs stored, under SIGKILL mid-load,
  SQLite and PostgreSQL (every acknowledged id must be in the database);
- ``pg stop`` / ``pg freeze``: the same while PostgreSQL is cut off (connections reset)
  or frozen (connections open, nothing moves) behind a loopback proxy, with the answers
  and the slowest one (bounded by ``BANNERTRACK_DB_TIMEOUT``);
- ``disk full``: SQLite on a 2 MiB tmpfs mounted in a private mount namespace
  (``unshare --mount``: needs root or user namespaces; said so and skipped otherwise);
- ``poison``: visitors' answers while NUL-laden clicks arrive (two senders, each up to
  50 requests/s; the rate reached is printed) on PostgreSQL;
- ``methods`` / ``slow bodies``: server RSS and ``/metrics`` size before and after 50,000
  made-up methods, and 1,200 connections sending a body at 1 byte per 2 s;
- ``outage``: the outage spool (``--outage``, or alone with ``--outage-only``): steady
  tracking-link load from ``wrk`` (``bench/_outage_wrk.py``: click_path's visitors, a
  modest fixed rate) while a PostgreSQL of its own is stopped, frozen (SIGSTOP), or
  stopped with the service SIGKILLed mid-outage and started again, one and two workers;
  per row the answers that were not 302, the link's p99 before, during and after the
  outage (a wrk run each), acknowledged vs stored click by click, and whether every
  rollup and repeat flag equals a recount from the raw clicks
  (``tests/support/outage_scenario.py``; the tests run short versions with a Python
  client). It ends with the rows as one markdown table.

    .venv/bin/python bench/faults.py [--quick] [--outage SECONDS] [--outage-only]
    .venv/bin/python bench/faults.py --outage 30 --outage-only   # the outage table only
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import msgspec
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

from tests.support.outage_scenario import OutageFigures  # noqa: E402
from tests.support.proxy import TcpProxy  # noqa: E402
from tests.support.services import postgres_proxy_target, via_proxy  # noqa: E402

from _floods import ADMIN, flood_phase, make_banner  # noqa: E402
from _http import LoadResult, request_bytes, run  # noqa: E402
from _servers import (  # noqa: E402
    Server,
    bannertrack_server,
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
)


class Clicks:
    """Marked clicks: every acknowledged id is remembered, to be found in the database."""

    def __init__(self, banner: int) -> None:
        self.acked: set[int] = set()
        self.request = lambda i: request_bytes(
            "POST",
            f"/api/v1/banners/{banner}/clicks",
            body=msgspec.json.encode({"referrer": f"https://marker.example/{i}"}),
            headers={"Content-Type": "application/json", **ADMIN},
        )

    def on_response(self, _i: int, status: int, body: bytes) -> None:
        if status == 201:
            self.acked.add(int(msgspec.json.decode(body)["id"]))


async def stored_ids(database_url: str, ids: set[int]) -> int:
    from sqlalchemy import func, select

    from bannertrack.db.engine import create_engine
    from bannertrack.db.tables import clicks

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            query = select(func.count()).select_from(clicks).where(clicks.c.id.in_(list(ids)))
            return int((await conn.execute(query)).scalar_one()) if ids else 0
    finally:
        await engine.dispose()


async def load_with(
    server: Server, clicks: Clicks, seconds: float, fault: Callable[[], Awaitable[None]]
) -> tuple[LoadResult, float]:
    """Clicks for ``seconds`` while ``fault`` runs; (result, slowest answer in s)."""
    load = asyncio.create_task(
        run(
            "127.0.0.1",
            server.port,
            clicks.request,
            connections=32,
            duration=seconds,
            request_timeout=30,
            on_response=clicks.on_response,
        )
    )
    await fault()
    result = await load
    return result, max(result.latencies, default=0.0)


def line(name: str, clicks: Clicks, stored: int, result: LoadResult, slowest: float) -> None:
    lost = len(clicks.acked) - stored
    print(
        f"{name:<22} acknowledged {len(clicks.acked):>6}  stored of those {stored:>6}  "
        f"lost {lost}  answers {dict(sorted(result.statuses.items()))} "
        f"errors {result.errors}  slowest {slowest:.2f}s"
    )


async def kill_phase(database_url: str, work: Path, name: str, rounds: int) -> None:
    clicks = Clicks(0)
    total = LoadResult()
    for r in range(rounds):
        server = bannertrack_server(database_url, {}, work / f"kill-{name}.log").start()
        if r == 0:
            clicks = Clicks(await make_banner(server.url))

        async def kill(server: Server = server) -> None:
            await asyncio.sleep(1.5)
            assert server.proc is not None
            # granian's workers are child processes: the whole tree dies, as in a crash.
            root = psutil.Process(server.proc.pid)
            for proc in [*root.children(recursive=True), root]:
                proc.send_signal(signal.SIGKILL)
            server.proc.wait()

        result, _ = await load_with(server, clicks, 2.5, kill)
        server.proc = None
        total.statuses.update(result.statuses)
        total.errors += result.errors
        total.latencies += result.latencies
    stored = await stored_ids(database_url, clicks.acked)
    line(f"SIGKILL x{rounds} ({name})", clicks, stored, total, max(total.latencies, default=0))


async def postgres_phases(admin_url: str, work: Path) -> None:
    url = await create_postgres_database(admin_url)
    unix, tcp = postgres_proxy_target(url)
    proxy = TcpProxy(target_unix=unix, target=tcp)
    proxy.start()
    server = bannertrack_server(via_proxy(url, proxy.port), {}, work / "pg.log").start()
    try:
        for name, cut, restore, seconds in (
            ("pg stop 4s", proxy.stop, proxy.start, 4.0),
            ("pg freeze 8s", proxy.freeze, proxy.thaw, 8.0),
        ):
            clicks = Clicks(await make_banner(server.url))

            async def fault(
                cut: Callable[[], None] = cut,
                restore: Callable[[], None] = restore,
                seconds: float = seconds,
            ) -> None:
                await asyncio.sleep(1.0)
                cut()
                await asyncio.sleep(seconds)
                restore()

            result, slowest = await load_with(server, clicks, seconds + 3.0, fault)
            line(name, clicks, await stored_ids(url, clicks.acked), result, slowest)
        await poison_phase(server)
    finally:
        server.stop()
        proxy.close()
        await drop_postgres_database(admin_url, url)


async def poison_phase(server: Server) -> None:
    """Visitors on /c/{id} for 5 s while poison clicks carry NUL in body or headers."""
    banner = await make_banner(server.url)
    visit = request_bytes("GET", f"/c/{banner}", headers={"User-Agent": "Mozilla/5.0 bench"})
    poison: Counter[int | str] = Counter()

    async def poisoner(deadline: float) -> None:
        async with httpx.AsyncClient(base_url=server.url) as client:
            i = 0
            while time.monotonic() < deadline:
                i += 1
                body = {"user_agent": "x\u0000"} if i % 2 else {"referrer": "https://r/\u0000"}
                r = await client.post(f"/api/v1/banners/{banner}/clicks", json=body, headers=ADMIN)
                poison[f"body {r.status_code}"] += 1
                raw = request_bytes("GET", f"/c/{banner}", headers={"User-Agent": "a\x00b"})
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(raw)
                head = await reader.readline()
                poison[f"header {head.split()[1].decode() if head else 'closed'}"] += 1
                writer.close()
                await asyncio.sleep(0.04)  # two poison requests per 40 ms: 50/s

    deadline = time.monotonic() + 5.0
    visitors, *_ = await asyncio.gather(
        run("127.0.0.1", server.port, [visit], connections=16, duration=5.0),
        poisoner(deadline),
        poisoner(deadline),
    )
    bad = visitors.responses - visitors.count(302) + visitors.errors
    rate = sum(poison.values()) / 5.0
    print(
        f"{'poison (pg)':<22} visitors {visitors.responses} answered "
        f"{dict(visitors.statuses)}, visitor errors {bad}; poison {rate:.0f}/s {dict(poison)}"
    )


async def disk_full_phase(work: Path) -> None:
    if shutil.which("unshare") is None:
        print(f"{'disk full':<22} not run: no unshare(1) to mount a private tmpfs")
        return
    small = work / "small"
    small.mkdir()
    mount = 'mount -t tmpfs -o size=2m tmpfs "$0" && exec "$@"'
    server = bannertrack_server(f"sqlite:///{small / 'bt.db'}", {}, work / "full.log")
    server.argv = ["unshare", "--mount", "sh", "-c", mount, str(small), *server.argv]
    try:
        server.start()
    except RuntimeError as exc:
        print(f"{'disk full':<22} not run: the server could not start on a private tmpfs: "
              f"{str(exc).splitlines()[-1]}")  # fmt: skip
        return
    try:
        clicks = Clicks(await make_banner(server.url))
        result = await run(
            "127.0.0.1", server.port, clicks.request, connections=8, total=3000,
            duration=20, on_response=clicks.on_response,
        )  # fmt: skip
        async with httpx.AsyncClient(base_url=server.url) as client:
            health = await client.get("/healthz")
            stats = (await client.get("/api/v1/banners/1/stats")).json()
    finally:
        server.stop()
    print(
        f"{'disk full (sqlite)':<22} acknowledged {len(clicks.acked):>6}  stored "
        f"{stats['total_clicks']:>6}  answers {dict(result.statuses)}  /healthz "
        f"{health.status_code} ingest={health.json()['checks']['ingest']['status']}"
    )


async def outage_rows(
    seconds: float, workers: list[int], faults: list[str], connections: int, gap_ms: float
) -> None:
    from tests.support.outage_scenario import run_outage
    from tests.support.pg_cluster import pg_cluster

    from _outage_wrk import WrkLoad

    if shutil.which("wrk") is None:
        raise SystemExit("the outage rows need wrk on PATH (apt-get install wrk)")
    print(
        f"outage rows: wrk, {connections} connections, each a click per {gap_ms:g} ms on "
        f"average (exponential gaps: at most {connections * 1000 / gap_ms:.0f}/s), "
        f"{OUTAGE_BEFORE:g} s before, {seconds:g} s during, {OUTAGE_AFTER:g} s after",
        flush=True,
    )
    rows: list[OutageFigures] = []
    with tempfile.TemporaryDirectory(prefix="bt-outage-") as tmp, pg_cluster() as cluster:
        for n in workers:
            for fault in faults:
                work = Path(tmp) / f"{fault}-{n}"
                work.mkdir()
                figures = await run_outage(
                    cluster, f"bt_{fault}_{n}", fault, seconds, work, workers=n,  # type: ignore[arg-type]
                    before=OUTAGE_BEFORE, after=OUTAGE_AFTER,
                    env={"BANNERTRACK_TRUSTED_PROXIES": "127.0.0.1"},
                    load=lambda url, banners: WrkLoad(url, banners, connections, gap_ms),
                )  # fmt: skip
                print(f"outage {figures.line()}", flush=True)
                for problem in figures.recount_problems[:5]:
                    print(f"    recount: {problem}")
                rows.append(figures)
    print(outage_table(rows))


OUTAGE_BEFORE = OUTAGE_AFTER = 10.0
FAULTS = {
    "stop": "PostgreSQL stopped",
    "freeze": "PostgreSQL frozen (SIGSTOP)",
    "kill": "stopped, service SIGKILLed half-way, restarted",
}


def outage_table(rows: list[OutageFigures]) -> str:
    out = [
        "| fault | workers | clicks (during, /s) | not 302 | no answer | p99 ms before / "
        "during / after | p50 / max during ms | acknowledged = stored | recount |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in rows:
        b, d, a = (f.windows[k] for k in ("before", "during", "after"))
        stored = f"{f.acknowledged:,} = {f.stored - f.unanswered_stored:,}"
        if f.unanswered_stored:
            stored += f" (+{f.unanswered_stored} never answered)"
        if f.lost or f.doubled or f.extra:
            stored += f" LOST {f.lost} DOUBLED {f.doubled} EXTRA {f.extra}"
        out.append(
            f"| {FAULTS[f.fault]} | {f.workers} | {f.requests:,} ({d.answers:,}, "
            f"{d.answers / d.seconds:.0f}) | {f.non_302_known} | {f.errors}"
            f"{' (at the kill)' if f.fault == 'kill' else ''} | {b.p99_ms:.1f} / {d.p99_ms:.1f} / "
            f"{a.p99_ms:.1f} | {d.p50_ms:.1f} / {d.max_ms:.0f} | {stored} | "
            f"{'equal' if not f.recount_problems else 'DIFFERS'} |"
        )
    return "\n".join(out)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one SIGKILL, 10k made-up methods")
    parser.add_argument(
        "--outage", type=float, default=0.0, help="seconds of each outage row (0: no rows)"
    )
    parser.add_argument("--outage-only", action="store_true", help="only the outage rows")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--faults", nargs="+", choices=list(FAULTS), default=list(FAULTS))
    parser.add_argument(
        "--connections", type=int, default=8, help="outage rows: wrk connections (visitors)"
    )
    parser.add_argument(
        "--gap-ms", type=float, default=16.0, help="outage rows: mean gap per connection"
    )
    args = parser.parse_args()
    print(f"bannertrack faults bench, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if args.outage > 0:
        await outage_rows(args.outage, args.workers, args.faults, args.connections, args.gap_ms)
    if args.outage_only:
        return
    with tempfile.TemporaryDirectory(prefix="bt-faults-") as tmp, postgres_admin_url() as admin:
        work = Path(tmp)
        rounds = 1 if args.quick else 3
        await kill_phase(f"sqlite:///{work / 'kill.db'}", work, "sqlite", rounds)
        pg_kill = await create_postgres_database(admin)
        try:
            await kill_phase(pg_kill, work, "postgresql", rounds)
        finally:
            await drop_postgres_database(admin, pg_kill)
        await postgres_phases(admin, work)
        await disk_full_phase(work)
        await flood_phase(work, 10_000 if args.quick else 50_000)


if __name__ == "__main__":
    asyncio.run(main())
