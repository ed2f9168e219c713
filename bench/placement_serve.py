"""Placements serve: ``GET /p/{id}`` against the tracking link and a bare handler.

One run, one table, ratios. Real server processes (``python -m bannertrack api``, one
worker: SQLite, and PostgreSQL on a throwaway ``pgserver``) and the bare Litestar app of
``bench/_servers.py`` (``GET /p/{id}`` answers a constant HTML document of the serve's
size, ``GET /c/{id}`` the link's 302) are driven by ``wrk`` on 127.0.0.1 with the click
path's script (``bench/click_path.py``: 1,000 visitors, user agent + X-Forwarded-For from
a trusted proxy). Per server: 20 banners, 20 placements of three banners each (weights
3, 2, 1; one banner capped at 1,000 a day, so the visitor key is computed), served as
HTML. In every round and at each load: the bare serve, the link, then the serve, so
drift hits all alike; the table gives medians.

Printed per row: req/s, ``x link`` (the serve's req/s over the link's, same server, load
and round; goal >= 0.8), ``x bare`` (over the bare handler's serve), p99 (goal <= 15 ms at
c64), the mean latency wrk's closed loop implies (connections / req/s: Little's law; p99
can be no lower) and p99 over it (the spread: the machine's scheduling as much as the
server's), and CPU per request of the server's process tree (from /proc; PostgreSQL's
too). A framework-less ASGI app under granian (``bare ASGI``, answering the link's empty
302) is measured too: the floor of granian, the socket and wrk on this machine.
Every serve must answer 200: one that does not is a problem and fails the run.

    .venv/bin/python bench/placement_serve.py --runs 3 --duration 3

Linux only (/proc). ``wrk`` must be on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from _servers import (  # noqa: E402
    ADMIN_TOKEN,
    Server,
    bannertrack_server,
    bare_server,
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
)
from click_path import (  # noqa: E402
    N_BANNERS,
    cpu_delta,
    create_banners,
    postmaster_pid,
    run_wrk,
    tree_cpu,
)

LINK, SERVE = "/c/%d", "/p/%d"


@dataclass
class Sample:
    rate: float
    p99_ms: float
    cpu_ms: float
    db_cpu_ms: float | None
    bad: int


@dataclass
class Row:
    target: str
    load: str
    connections: int
    samples: list[Sample] = field(default_factory=list)
    ratios: dict[str, list[float]] = field(default_factory=dict)


def create_placements(url: str) -> None:
    """Placement i serves banners i, i+1, i+2 (mod 20) by weights 3, 2, 1."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
        c.put("/api/v1/banners/1", json={"cap_per_day": 1000}).raise_for_status()
        for i in range(N_BANNERS):
            r = c.post("/api/v1/placements", json={"name": f"bench {i}", "width": 300})
            r.raise_for_status()
            if int(r.json()["id"]) != i + 1:
                raise RuntimeError("the benchmark expects placement ids 1..20 in a fresh database")
            banners = [
                {"banner_id": (i + k) % N_BANNERS + 1, "weight": w} for k, w in enumerate((3, 2, 1))
            ]
            c.put(
                f"/api/v1/placements/{i + 1}/banners", json={"banners": banners}
            ).raise_for_status()


@dataclass
class Bench:
    args: argparse.Namespace
    work: Path
    pg_root: int | None = None
    problems: list[str] = field(default_factory=list)

    def measure(self, name: str, server: Server, path: str, conns: int, db: bool) -> Sample:
        pid = server.proc.pid if server.proc else None
        s0, p0 = tree_cpu(pid), tree_cpu(self.pg_root if db else None)
        w = run_wrk(server.port, path, conns, self.args.duration, self.work)
        s1, p1 = tree_cpu(pid), tree_cpu(self.pg_root if db else None)
        if w.bad or w.socket_errors:
            self.problems.append(f"{name} {path} c{conns}: {w.bad} bad statuses")
        done = max(w.ok, 1)
        sample = Sample(
            rate=w.rate,
            p99_ms=w.p99_ms,
            cpu_ms=cpu_delta(s0, s1) / done * 1000,
            db_cpu_ms=cpu_delta(p0, p1) / done * 1000 if db else None,
            bad=w.bad,
        )
        print(
            f"  {name:<28} {path.split('%')[0]:<4} c{conns:<4} {w.rate:9,.0f}/s  "
            f"p99 {w.p99_ms:6.1f} ms  CPU {sample.cpu_ms:.3f} ms/req",
            file=sys.stderr,
        )
        return sample


def table(rows: list[Row]) -> str:
    lines = [
        "| server | load | conns | req/s | x link | x bare | p99 ms | mean ms (c/rate) "
        "| p99 / mean | server CPU ms/req | PG CPU ms/req |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def med(xs: list[float]) -> str:
        return f"{statistics.median(xs):.2f}" if xs else "-"

    for r in rows:
        s = r.samples
        db = [x.db_cpu_ms for x in s if x.db_cpu_ms is not None]
        rate = statistics.median(x.rate for x in s)
        p99 = statistics.median(x.p99_ms for x in s)
        mean = r.connections / rate * 1000 if rate else float("nan")
        lines.append(
            f"| {r.target} | {r.load} | {r.connections} "
            f"| {rate:,.0f} "
            f"| {med(r.ratios.get('link', []))} | {med(r.ratios.get('bare', []))} "
            f"| {p99:.1f} | {mean:.1f} | {p99 / mean:.1f} "
            f"| {statistics.median(x.cpu_ms for x in s):.3f} "
            f"| {f'{statistics.median(db):.3f}' if db else '-'} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace, work: Path) -> int:
    bench = Bench(args, work)
    rows: dict[tuple[str, str, int], Row] = {}
    names = [n for n in ("sqlite, 1 worker", "postgresql, 1 worker") if not args.only or any(
        o in n for o in args.only)]  # fmt: skip
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as astack:
        stack = astack.enter_context(contextlib.ExitStack())
        pg_admin = stack.enter_context(postgres_admin_url())
        bare = bare_server(work / "bare.log").start()
        astack.callback(bare.stop)
        bare_asgi = bare_server(work / "bare-asgi.log", asgi=True).start()
        astack.callback(bare_asgi.stop)
        servers: dict[str, Server] = {}
        env = {"BANNERTRACK_TRUSTED_PROXIES": "127.0.0.1", "PYTHONPATH": str(ROOT / "src")}
        for name in names:
            slug = name.split(",")[0]
            if slug == "sqlite":
                url = f"sqlite:///{work / 'serve.db'}"
            else:
                url = await create_postgres_database(pg_admin)
                astack.push_async_callback(drop_postgres_database, pg_admin, url)
            server = bannertrack_server(url, env, work / f"{slug}.log").start()
            astack.callback(server.stop)
            create_banners(server.url)
            create_placements(server.url)
            servers[name] = server
            if slug == "postgresql" and bench.pg_root is None:
                bench.pg_root = await postmaster_pid(url)
        print("warm-up", file=sys.stderr)
        for server in servers.values():
            for path in (LINK, SERVE):
                run_wrk(server.port, path, 64, 1, work)
        for round_no in range(args.runs):
            if time.monotonic() - started > args.max_seconds:
                print(f"time budget spent after {round_no} rounds", file=sys.stderr)
                break
            print(f"round {round_no + 1}", file=sys.stderr)
            for conns in args.connections:
                asgi_s = bench.measure("bare ASGI (302)", bare_asgi, SERVE, conns, False)
                rows.setdefault(("bare ASGI (granian), 302", "floor", conns), Row(
                    "bare ASGI (granian), 302", "floor", conns)).samples.append(asgi_s)  # fmt: skip
                bare_s = bench.measure("bare Litestar", bare, SERVE, conns, False)
                rows.setdefault(("bare Litestar (granian)", "serve", conns), Row(
                    "bare Litestar (granian)", "serve", conns)).samples.append(bare_s)  # fmt: skip
                for name, server in servers.items():
                    db = name.startswith("postgresql")
                    link = bench.measure(name, server, LINK, conns, db)
                    serve = bench.measure(name, server, SERVE, conns, db)
                    lr = rows.setdefault((name, "link", conns), Row(name, "link", conns))
                    lr.samples.append(link)
                    lr.ratios.setdefault("bare", [])
                    sr = rows.setdefault((name, "serve", conns), Row(name, "serve", conns))
                    sr.samples.append(serve)
                    sr.ratios.setdefault("link", []).append(serve.rate / link.rate)
                    sr.ratios.setdefault("bare", []).append(serve.rate / bare_s.rate)
    ordered = sorted(rows.values(), key=lambda r: (r.connections, r.target, r.load))
    print(
        f"\n{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"wrk, {args.runs} runs of {args.duration:g} s per row, medians; load average "
        f"{os.getloadavg()[0]:.1f} at the end\n"
    )
    print(table(ordered))
    print()
    for r in ordered:
        if r.load == "serve" and r.target in names:
            ratio = statistics.median(r.ratios["link"])
            p99 = statistics.median(x.p99_ms for x in r.samples)
            print(
                f"{r.target}: serve c{r.connections} = {ratio:.2f}x link (goal >= 0.8)"
                + (f", p99 {p99:.1f} ms (goal <= 15)" if r.connections == 64 else "")
            )
    for p in bench.problems:
        print(f"PROBLEM {p}")
    return 1 if bench.problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="measured rounds")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    parser.add_argument("--max-seconds", type=float, default=900, help="stop starting rounds")
    parser.add_argument("--only", action="append", metavar="TEXT", help="'sqlite', 'postgresql'")
    parser.add_argument(
        "--connections", action="append", type=int, metavar="N", help="default 4, 64, 256"
    )
    args = parser.parse_args()
    args.connections = args.connections or [4, 64, 256]
    if shutil.which("wrk") is None:
        parser.error("wrk is not on PATH (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="bt-bench-serve-") as work:
        code = asyncio.run(main_async(args, Path(work)))
    sys.exit(code)


if __name__ == "__main__":
    main()
