"""One outage under steady link load, and the checks after it: for tests and bench/faults.py.

``run_outage`` starts ``bannertrack api`` (``workers`` processes) on a ``PgCluster``,
creates banners, warms the link, and drives a load (``LinkLoad``, or what ``load`` makes:
bench/faults.py gives wrk) through three windows: ``before`` seconds, the fault (PostgreSQL
stopped, frozen, or stopped with the service SIGKILLed half-way and started again once
PostgreSQL is back), and ``after`` seconds. The "during" window is the whole stop or
freeze; with the SIGKILL it ends at the kill (after it nothing can answer until the
restart). Then it waits for every spool to drain and compares what was acknowledged with
what is stored, and every rollup and repeat flag with a recount from the raw clicks.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
import psutil

from tests.support.outage_load import LinkLoad, Load, Window, exactness, stored_markers
from tests.support.pg_cluster import PgCluster
from tests.support.recount import recount
from tests.support.server import ServerProcess
from tests.support.services import pg_execute

Fault = Literal["stop", "freeze", "kill"]
ADMIN_TOKEN = "outage-admin-token"
BANNER = {"name": "o", "image_url": "https://a.example/i", "target_url": "https://a.example/"}


@dataclass
class OutageFigures:
    fault: str
    workers: int
    seconds: float
    windows: dict[str, Window]
    acknowledged: int
    stored: int
    lost: int
    doubled: int
    extra: int
    unanswered_stored: int
    recount_problems: list[str]
    order_notes: list[str]
    drained_s: float

    @property
    def requests(self) -> int:
        return sum(w.answers for w in self.windows.values())

    @property
    def during(self) -> int:
        return self.windows["during"].answers

    @property
    def non_302_known(self) -> int:
        """Answers other than 302 to a known banner (every request goes to one)."""
        return sum(w.not_302 for w in self.windows.values())

    @property
    def errors(self) -> int:
        """Requests with no answer (expected only at a SIGKILL)."""
        return sum(w.errors for w in self.windows.values())

    @property
    def p99_before_ms(self) -> float:
        return self.windows["before"].p99_ms

    @property
    def p99_during_ms(self) -> float:
        return self.windows["during"].p99_ms

    def line(self) -> str:
        b, d, a = (self.windows[k] for k in ("before", "during", "after"))
        return (
            f"{self.fault:<7} {self.workers}w {self.seconds:>4.0f}s  requests {self.requests:>6} "
            f"(during {d.answers:>5}, {d.answers / d.seconds:4.0f}/s)  non-302 "
            f"{self.non_302_known} errors {self.errors}  p99 "
            f"before {b.p99_ms:5.1f} ms, during {d.p99_ms:6.1f} ms (p50 {d.p50_ms:5.1f}, max "
            f"{d.max_ms:7.1f}), after {a.p99_ms:6.1f} ms  acknowledged "
            f"{self.acknowledged} stored {self.stored} lost {self.lost} doubled {self.doubled} "
            f"extra {self.extra} in-flight {self.unanswered_stored}  recount "
            f"{'equal' if not self.recount_problems else 'DIFFERS'}"
            f"{' (' + self.order_notes[0] + ')' if self.order_notes else ''}"
            f"  drained in {self.drained_s:.1f}s  answers "
            + "; ".join(f"{k} {dict(w.statuses)}" for k, w in self.windows.items())
        )


def _kill_tree(server: ServerProcess) -> None:
    assert server.proc is not None
    root = psutil.Process(server.proc.pid)
    for proc in [*root.children(recursive=True), root]:
        proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    server.proc = None
    server._log.close()  # start() opens it again


def spooled_batches(spool_dir: Path) -> int:
    """Batches in every spool file under ``spool_dir``: every worker's, not only the one
    a /healthz request happens to reach."""
    total = 0
    for path in spool_dir.rglob("spool-*.db"):
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            total += db.execute("SELECT count(*) FROM batches").fetchone()[0]
    return total


async def _drained(url: str, spool_dir: Path, within: float) -> float:
    """Seconds until no spool file holds a batch and /healthz sees the database."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while True:
            try:
                body = (await client.get("/healthz")).json()
                if body["checks"]["database"]["status"] == "ok" and not spooled_batches(spool_dir):
                    return time.monotonic() - started
            except (httpx.HTTPError, ValueError, KeyError, sqlite3.Error):
                pass
            if time.monotonic() - started > within:
                raise TimeoutError(f"spool not drained in {within}s")
            await asyncio.sleep(0.2)


async def run_outage(
    cluster: PgCluster,
    database: str,
    fault: Fault,
    seconds: float,
    work: Path,
    *,
    workers: int = 1,
    before: float = 2.0,
    after: float = 3.0,
    connections: int = 16,
    env: dict[str, str] | None = None,
    load: Callable[[str, list[int]], Load] | None = None,
) -> OutageFigures:
    pg_execute(cluster.url, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    pg_execute(cluster.url, f"CREATE DATABASE {database}")
    url = cluster.url.replace("/postgres?", f"/{database}?")
    server_env = {
        "BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN,
        "BANNERTRACK_LOG_LEVEL": "WARNING",
        "BANNERTRACK_WORKERS": str(workers),
        "BANNERTRACK_SPOOL_DIR": str(work / "spool"),
        **(env or {}),
    }
    log = work / f"server-{database}.log"
    server = ServerProcess(url, log, env=server_env).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            banners = [
                (await client.post("/api/v1/banners", json=BANNER, headers=headers)).json()["id"]
                for _ in range(4)
            ]
            # Every worker holds every banner (one never held fails: docs/ingest.md): a new
            # connection each time, or one keep-alive connection warms one worker.
            warm = {"Referer": "warm", "Connection": "close"}
            for _ in range(8 * workers):
                for b in banners:
                    await client.get(f"/c/{b}", headers=warm)
        link = (load or (lambda u, b: LinkLoad(u, b, connections=connections)))(server.url, banners)
        windows = {"before": await link.window("before", before)}
        interrupt = asyncio.Event()
        during = asyncio.create_task(link.window("during", seconds, interrupt))
        cut = time.monotonic()
        # Blocking calls go to a thread: a load in this loop must not stall (it times them).
        if fault == "freeze":
            await asyncio.to_thread(cluster.freeze)
            await asyncio.sleep(cut + seconds - time.monotonic())
            await asyncio.to_thread(cluster.thaw)
        else:
            await asyncio.to_thread(cluster.stop)
            if fault == "kill":
                await asyncio.sleep(cut + seconds / 2 - time.monotonic())
                await asyncio.to_thread(_kill_tree, server)  # the spool holds the clicks now
                interrupt.set()
            await asyncio.sleep(cut + seconds - time.monotonic())
            await asyncio.to_thread(cluster.start)
        windows["during"] = await during
        if fault == "kill":
            # The same spool folder: it replays what it finds.
            await asyncio.to_thread(server.start, 60)
        windows["after"] = await link.window("after", after)
        drained = await _drained(server.url, work / "spool", within=180)
    finally:
        server.stop()
    figures = exactness(link, await stored_markers(url))
    notes: list[str] = []
    problems = await recount(url, strict_order=workers == 1, order_notes=notes)
    return OutageFigures(
        fault=fault,
        workers=workers,
        seconds=seconds,
        windows=windows,
        acknowledged=figures["acknowledged"],
        stored=figures["stored"],
        lost=figures["lost"],
        doubled=figures["doubled"],
        extra=figures["extra"],
        unanswered_stored=figures["unanswered_stored"],
        recount_problems=problems,
        order_notes=notes,
        drained_s=drained,
    )
