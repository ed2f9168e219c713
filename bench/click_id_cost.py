"""What a click id costs the tracking link, with its own A/A control in the same run.

One server per database (SQLite, and a throwaway PostgreSQL), one worker, 60 banners in
three groups of 20: **A** without a ``click_id_param``, **B** with one (every click gets a
random id in its Location and its row, issue 28), and **A'** without, the control. Each
round drives every group once with ``wrk`` (the link's request mix of
``click_path.py``: 1,000 visitors behind a trusted proxy), in an order that cycles
through all six permutations, so no group keeps a position (rounds: a multiple of 6).
Same process, same database, same tables growing: only the banners differ.

Why a control: on this 2-core VM back-to-back windows of the same load on the same server
differ by up to 40 % (WAL checkpoints, batch sizes finding their level, the VM), so a
ratio means nothing without the spread of a ratio that must be 1. Per round it prints
B / A (the click id's cost) and A' / A (the noise), and at the end each one's median with
a bootstrap 95 % interval (rounds resampled), and CPU per click (the server's process
tree, and PostgreSQL's) the same way. The goal, 5 %, is *shown* when the interval of
B / A lies above 0.95; the control's interval says how fine the run could see.

    .venv/bin/python bench/click_id_cost.py                      # 48 rounds of 2 s, ~13 min
    .venv/bin/python bench/click_id_cost.py --only sqlite --rounds 12 --duration 1
    .venv/bin/python bench/click_id_cost.py --calls --rounds 30   # call by call, in-process

``--calls`` runs the service's app in this process on SQLite (ASGI calls straight into it,
64 at a time, no HTTP server), sends 3,000 clicks to group A and 3,000 to group B under
``cProfile``, and prints the functions whose call counts or own time differ: exact counts
where the HTTP windows are noisy (the batches, the writer's statements, every frame). Then,
without the profiler, ``--rounds`` rounds of A, B and A': the process's CPU a click and the
SQLite writer thread's (from /proc), medians.

Longer than 300 lines on purpose: two measurements of one question (over HTTP with a
control, and in-process call by call) share the groups, the rounds and the interval.

After every round (its three windows run back to back) the database is checked as in
``click_path.py``: acknowledged <= stored <= acknowledged + requests cut off in flight,
rollups equal the raw rows.
Linux only (/proc); ``wrk`` must be on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import click_path as cp  # noqa: E402
from _servers import (  # noqa: E402
    ADMIN_TOKEN,
    bannertrack_server,
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
)

GROUPS = {"A": (0, None), "B": (cp.N_BANNERS, "bt_click"), "A'": (2 * cp.N_BANNERS, None)}
ORDERS = list(itertools.permutations(GROUPS))


@dataclass
class Window:
    rate: float
    server_ms: float  # server CPU per acknowledged click
    db_ms: float | None  # PostgreSQL's CPU per acknowledged click
    ok: int  # 302s
    errors: int  # other statuses and socket errors


@dataclass
class Side:
    database: str
    rounds: list[dict[str, Window]] = field(default_factory=list)


def interval(values: list[float], seed: int = 7, draws: int = 4000) -> tuple[float, float, float]:
    """Median and a bootstrap 95 % interval of the median (the rounds resampled)."""
    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    return statistics.median(values), meds[int(0.025 * draws)], meds[int(0.975 * draws) - 1]


def ratios(side: Side, num: str, attr: str) -> list[float]:
    out = []
    for r in side.rounds:
        a, x = getattr(r["A"], attr), getattr(r[num], attr)
        if a and x:
            out.append(x / a)
    return out


@dataclass
class Meter:
    """The three windows' CPU readings: the server's process tree and PostgreSQL's."""

    server_pid: int
    pg_root: int | None


def window(meter: Meter, port: int, group: str, args: argparse.Namespace, work: Path) -> Window:
    s0, p0 = cp.tree_cpu(meter.server_pid), cp.tree_cpu(meter.pg_root)
    w = cp.run_wrk(port, cp.LOADS["link"], args.connections, args.duration, work, GROUPS[group][0])
    s1, p1 = cp.tree_cpu(meter.server_pid), cp.tree_cpu(meter.pg_root)
    ok = max(w.ok, 1)
    db_ms = cp.cpu_delta(p0, p1) / ok * 1000 if meter.pg_root else None
    return Window(w.rate, cp.cpu_delta(s0, s1) / ok * 1000, db_ms, w.ok, w.bad + w.socket_errors)


async def run_side(
    args: argparse.Namespace, work: Path, database: str, url: str, problems: list[str]
) -> Side:
    env = {"BANNERTRACK_TRUSTED_PROXIES": "127.0.0.1", "PYTHONPATH": str(ROOT / "src")}
    server = bannertrack_server(url, env, work / f"{database}.log").start()
    side = Side(database)
    try:
        for first, param in GROUPS.values():
            cp.create_banners(server.url, param, first=first)
        assert server.proc is not None
        pg_root = await cp.postmaster_pid(url) if database == "postgresql" else None
        meter = Meter(server.proc.pid, pg_root)
        print(f"{database}: warm-up", file=sys.stderr)
        for first, _ in GROUPS.values():
            cp.run_wrk(server.port, cp.LOADS["link"], args.connections, 1, work, first)
        for n in range(args.rounds):
            order = ORDERS[n % len(ORDERS)]
            # Checked once a round, not per window: the windows run back to back, so
            # what drifts (a checkpoint, the batch sizes) drifts under all three alike.
            await cp.spool_drained(server.url)
            before = await cp.db_counts(url)
            got = {g: window(meter, server.port, g, args, work) for g in order}
            await cp.spool_drained(server.url)
            after = await cp.db_counts(url)
            acknowledged = sum(w.ok for w in got.values())
            stored = after["clicks"] - before["clicks"]
            what = f"{database} round {n + 1}"
            if not acknowledged <= stored <= acknowledged + 3 * args.connections:
                problems.append(f"{what}: stored {stored}, acknowledged {acknowledged}")
            problems += [f"{what}: {e}" for e in cp.rollup_errors(after)]
            problems += [f"{what} {g}: {w.errors} errors" for g, w in got.items() if w.errors]
            side.rounds.append(got)
            a, b, control = got["A"].rate, got["B"].rate, got["A'"].rate
            print(
                f"{what} ({' '.join(order)}): A {a:,.0f}/s  B/A {b / a:.3f}  "
                f"A'/A {control / a:.3f}",
                file=sys.stderr,
            )
    finally:
        server.stop()
    return side


def report(side: Side) -> list[str]:
    def line(what: str, values: list[float], fmt: Callable[[float], str]) -> str:
        if not values:
            return f"| {side.database} | {what} | - | - |"
        med, lo, hi = interval(values)
        return f"| {side.database} | {what} | {fmt(med)} [{fmt(lo)}, {fmt(hi)}] | {len(values)} |"

    def f3(x: float) -> str:
        return f"{x:.3f}"

    out = [
        line("req/s, click id B / A", ratios(side, "B", "rate"), f3),
        line("req/s, control A' / A", ratios(side, "A'", "rate"), f3),
        line("server CPU per click, B / A", ratios(side, "B", "server_ms"), f3),
        line("server CPU per click, A' / A", ratios(side, "A'", "server_ms"), f3),
    ]
    if side.database == "postgresql":
        out += [
            line("PostgreSQL CPU per click, B / A", ratios(side, "B", "db_ms"), f3),
            line("PostgreSQL CPU per click, A' / A", ratios(side, "A'", "db_ms"), f3),
        ]
    for g in GROUPS:
        rates = [r[g].rate for r in side.rounds]
        cpu = [r[g].server_ms for r in side.rounds]
        if rates:
            out.append(
                f"| {side.database} | group {g}: req/s, server CPU ms per click "
                f"| {statistics.median(rates):,.0f}, {statistics.median(cpu):.3f} "
                f"| {len(rates)} |"
            )
    return out


MIN_ROUNDS = 10  # fewer, and a bootstrap interval of the median is too narrow to trust


def verdict(side: Side) -> str:
    b = ratios(side, "B", "rate")
    c = ratios(side, "A'", "rate")
    if len(b) < MIN_ROUNDS or len(c) < MIN_ROUNDS:
        return f"{side.database}: {len(b)} rounds, too few to judge (at least {MIN_ROUNDS})"
    _, lo, hi = interval(b)
    _, clo, chi = interval(c)
    if not clo <= 1.0 <= chi:
        return (
            f"{side.database}: the control's interval [{clo:.3f}, {chi:.3f}] misses 1: "
            "the groups differ by more than the click id; no verdict"
        )
    if lo >= 0.95:
        said = "within 5 %: shown (the interval of B / A lies above 0.95)"
    elif hi < 0.95:
        said = "over 5 %: shown (the interval of B / A lies below 0.95)"
    else:
        said = "not resolved at 5 % (the interval of B / A spans 0.95): more rounds"
    control = f"the control's interval [{clo:.3f}, {chi:.3f}]"
    return f"{side.database}: a click id's cost {said}; {control}"


async def main_async(args: argparse.Namespace, work: Path) -> int:
    problems: list[str] = []
    sides = []
    if "sqlite" in args.only:
        sides.append(await run_side(args, work, "sqlite", f"sqlite:///{work / 'l.db'}", problems))
    if "postgresql" in args.only:
        with postgres_admin_url() as admin:
            url = await create_postgres_database(admin)
            try:
                sides.append(await run_side(args, work, "postgresql", url, problems))
            finally:
                await drop_postgres_database(admin, url)
    print(
        f"\n{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"link at c{args.connections}, {args.rounds} rounds of three {args.duration:g} s "
        f"windows; medians [bootstrap 95 % interval]; load average "
        f"{os.getloadavg()[0]:.1f} at the end\n"
    )
    print("| server | ratio | median [95 %] | rounds |\n|---|---|---|---:|")
    for side in sides:
        print("\n".join(report(side)))
    print()
    for side in sides:
        print(verdict(side))
    for p in problems:
        print(f"PROBLEM {p}")
    if not problems:
        print(
            "\nevery round: acknowledged <= stored <= acknowledged + cut off in flight; "
            "rollups == raw rows; no error statuses"
        )
    return 1 if problems else 0


async def calls(work: Path, rounds: int, clicks: int = 3000, concurrency: int = 64) -> None:
    """cProfile of ``clicks`` link clicks to group A, then to group B, in this process."""
    import cProfile
    import pstats

    import httpx

    from bannertrack.api.app import create_app
    from bannertrack.config import Settings

    values = {
        "database_url": f"sqlite:///{work / 'calls.db'}",
        "admin_token": ADMIN_TOKEN,
        "trusted_proxies": "127.0.0.1",
    }
    settings = Settings(**values)  # type: ignore[arg-type]  # pydantic-settings fills the rest
    app = create_app(settings)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    life: asyncio.Task[None] = asyncio.create_task(app(lifespan, inbox.get, outbox.put))  # type: ignore[arg-type]
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        for first, param in GROUPS.values():
            for i in range(first, first + cp.N_BANNERS):
                body: dict[str, Any] = {
                    "name": f"b{i}",
                    "image_url": "https://ads.example/x.png",
                    "target_url": f"https://shop.example/{i}",
                }
                if param is not None:
                    body["click_id_param"] = param
                (
                    await client.post("/api/v1/banners", json=body, headers=headers)
                ).raise_for_status()

    async def click(banner: int, visitor: int) -> None:
        agent = f"Mozilla/5.0 (X11; Linux x86_64) bench/{visitor % 50}"
        scope = {
            "type": "http", "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": f"/c/{banner}", "raw_path": f"/c/{banner}".encode(), "root_path": "",
            "query_string": b"", "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
            "headers": [
                (b"host", b"127.0.0.1"), (b"user-agent", agent.encode()),
                (b"x-forwarded-for", f"198.51.{visitor % 200}.{visitor % 250}".encode()),
            ],
            "state": {}, "extensions": {},
        }  # fmt: skip
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        if status != [302]:
            raise RuntimeError(f"/c/{banner} answered {status}")

    async def group(first: int) -> None:
        todo = iter(range(clicks))
        rng = random.Random(first)

        async def worker() -> None:
            for _ in todo:
                visitor = rng.randrange(cp.N_VISITORS)
                await click(first + visitor % cp.N_BANNERS + 1, visitor)

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    stats = {}
    for name in ("A", "B", "A", "B"):  # the first pair warms up: caches, pools, compiles
        profile = cProfile.Profile()
        profile.enable()
        await group(GROUPS[name][0])
        profile.disable()
        stats[name] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    # Then without the profiler: the process's CPU and the SQLite writer thread's a click.
    timed: dict[str, list[tuple[float, float, float]]] = {g: [] for g in GROUPS}
    collections: dict[str, list[list[int]]] = {g: [] for g in GROUPS}
    for n in range(rounds):
        for name in ORDERS[n % len(ORDERS)]:
            cpu0, loop0, writer0 = time.process_time(), time.thread_time(), _writer_cpu()
            gc0 = [g["collections"] for g in gc.get_stats()]
            await group(GROUPS[name][0])
            cpu, writer = time.process_time() - cpu0, _writer_cpu() - writer0
            loop_cpu = time.thread_time() - loop0  # the event loop's thread: this one
            done = [g["collections"] for g in gc.get_stats()]
            collections[name].append([d - c for d, c in zip(done, gc0, strict=True)])
            per_click = (cpu / clicks * 1e6, writer / clicks * 1e6, loop_cpu / clicks * 1e6)
            timed[name].append(per_click)
    await inbox.put({"type": "lifespan.shutdown"})
    await life

    def where(key: tuple[str, int, str]) -> str:
        path = key[0].split("site-packages/")[-1].split("/src/")[-1]
        return f"{path}:{key[1]}({key[2]})"

    a, b = stats["A"], stats["B"]
    rows = []
    for key in set(a) | set(b):
        ca, cb = a.get(key, (0, 0, 0.0)), b.get(key, (0, 0, 0.0))
        rows.append((cb[1] - ca[1], ca[1], cb[1], ca[2], cb[2], where(key)))
    print(f"\n{clicks:,} clicks to A (no click id), then {clicks:,} to B (a click id), cProfile")
    print("\n| calls A | calls B | own ms A | own ms B | function |\n|---:|---:|---:|---:|---|")
    for n, ca, cb, ta, tb, name in sorted(rows, key=lambda r: (-abs(r[0]), r[5])):
        if abs(n) < clicks // 100:  # scheduling noise: a timer or a poll more or less
            break
        print(f"| {ca:,} | {cb:,} | {ta * 1000:.1f} | {tb * 1000:.1f} | {name} |")
    print("\nthe largest differences in own time, B - A:\n")
    print("| own ms A | own ms B | calls A | calls B | function |\n|---:|---:|---:|---:|---|")
    for _, ca, cb, ta, tb, name in sorted(rows, key=lambda r: r[3] - r[4])[:12]:
        print(f"| {ta * 1000:.1f} | {tb * 1000:.1f} | {ca:,} | {cb:,} | {name} |")
    for _, ca, cb, _, _, name in sorted(rows, key=lambda r: r[5]):
        if name.endswith(("(write_batch)", "(record_clicks)")):
            print(f"batches: {name} called {ca:,} times for A, {cb:,} for B")
    extra = sum(r[4] - r[3] for r in rows if r[1] == 0)
    print(
        f"\nown time of the functions only B calls: {extra / clicks * 1e6:.2f} us a click "
        "(under cProfile, which slows small calls several times)"
    )
    print(
        f"\nwithout the profiler, {rounds} rounds of {clicks:,} clicks a group (medians, us a "
        "click):\n\n| group | process CPU | event loop thread | SQLite writer thread "
        "| gc collections (gen 0, 1, 2) |\n|---|---:|---:|---:|---|"
    )
    for name, per_round in timed.items():
        cpu_us = statistics.median(v[0] for v in per_round)
        writer_us = statistics.median(v[1] for v in per_round)
        loop_us = statistics.median(v[2] for v in per_round)
        gcs = [sum(c[i] for c in collections[name]) for i in range(3)]
        print(f"| {name} | {cpu_us:.1f} | {loop_us:.1f} | {writer_us:.1f} | {gcs} |")
    b_a = [b[0] / a[0] for a, b in zip(timed["A"], timed["B"], strict=True)]
    c_a = [c[0] / a[0] for a, c in zip(timed["A"], timed["A'"], strict=True)]
    loop_b = [b[2] / a[2] for a, b in zip(timed["A"], timed["B"], strict=True)]
    loop_c = [c[2] / a[2] for a, c in zip(timed["A"], timed["A'"], strict=True)]
    for what, ratio in (
        ("B / A", b_a),
        ("A' / A", c_a),
        ("B / A, event loop thread", loop_b),
        ("A' / A, event loop thread", loop_c),
    ):
        if len(ratio) >= 2:
            med, lo, hi = interval(ratio)
            print(f"process CPU a click, {what}: {med:.3f} [{lo:.3f}, {hi:.3f}]")


def _writer_cpu() -> float:
    """CPU seconds of the SQLite click writer's thread (``bannertrack-sqlite-clicks``)."""
    for thread in threading.enumerate():
        if thread.name.startswith("bannertrack-sqlite-clicks") and thread.native_id:
            fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
            utime, stime = fields[fields.rindex(")") + 2 :].split()[11:13]
            return (int(utime) + int(stime)) / cp.TICK
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=48, help="rounds (each: A, B, A')")
    parser.add_argument("--duration", type=int, default=2, help="whole seconds per window (wrk)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--only",
        action="append",
        choices=["sqlite", "postgresql"],
        help="one database (repeatable; default both)",
    )
    parser.add_argument(
        "--calls",
        action="store_true",
        help="cProfile in-process instead: the calls a click id adds",
    )
    args = parser.parse_args()
    args.only = args.only or ["sqlite", "postgresql"]
    if args.calls:
        with tempfile.TemporaryDirectory(prefix="bt-click-id-") as tmp:
            asyncio.run(calls(Path(tmp), args.rounds))
        return
    if shutil.which("wrk") is None:
        parser.error("wrk is not on PATH")
    with tempfile.TemporaryDirectory(prefix="bt-click-id-") as tmp:
        code = asyncio.run(main_async(args, Path(tmp)))
    raise SystemExit(code)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
