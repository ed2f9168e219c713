"""Nothing acknowledged is lost: real server processes, SIGTERM and a database outage.

Each click carries a unique marker (its referrer), so the database can be checked click by
click: every acknowledged click (201, with its id) is stored exactly once, and whatever
else is stored was at least sent (in flight at shutdown: stored but unanswered is fine,
answered 201 and dropped is not).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests.conftest import ADMIN_TOKEN, INGEST, INGEST_TOKEN
from tests.support.banners import make_banner
from tests.support.proxy import TcpProxy
from tests.support.server import ServerProcess
from tests.support.services import PostgresFactory, postgres_proxy_target, via_proxy
from tests.support.waiting import wait_until

from bannertrack.db.repository import SqlRepository
from bannertrack.db.tables import clicks

ENV = {
    "BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN,
    "BANNERTRACK_INGEST_TOKEN": INGEST_TOKEN,
    "BANNERTRACK_LOG_LEVEL": "WARNING",
}


@dataclass
class Load:
    """Concurrent click senders against whatever server is at ``url`` right now."""

    url: str
    banner_id: int
    total: int
    concurrency: int = 32
    sent: set[int] = field(default_factory=set)
    acked: dict[int, int] = field(default_factory=dict)  # marker -> click id
    statuses: Counter[int | str] = field(default_factory=Counter)
    retry_after: set[str] = field(default_factory=set)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    _next: int = 0

    async def run(self, deadline: float) -> None:
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=10) as client:
            await asyncio.gather(*(self._worker(client, deadline) for _ in range(self.concurrency)))

    async def _worker(self, client: httpx.AsyncClient, deadline: float) -> None:
        while not self.stop.is_set() and self._next < self.total and time.monotonic() < deadline:
            n, self._next = self._next, self._next + 1
            self.sent.add(n)
            try:
                r = await client.post(
                    f"{self.url}/api/v1/banners/{self.banner_id}/clicks",
                    json={"referrer": f"https://marker.example/{n}"},
                    headers=INGEST,
                )
            except httpx.HTTPError as exc:
                self.statuses[type(exc).__name__] += 1
                await asyncio.sleep(0.01)  # a client's back-off, as a real one would
                continue
            self.statuses[r.status_code] += 1
            if r.status_code == 201:
                self.acked[n] = int(r.json()["id"])
            elif r.status_code == 503:
                self.retry_after.add(r.headers.get("retry-after", ""))
                await asyncio.sleep(0.01)  # a client's back-off, as a real one would

    async def until(self, predicate: Callable[[], bool], within: float) -> None:
        await wait_until(predicate, timeout=within, what=lambda: f"statuses: {self.statuses}")


async def stored_markers(database_url: str) -> dict[int, list[int]]:
    repo = SqlRepository.from_url(database_url)
    try:
        async with repo.engine.connect() as conn:
            rows = (await conn.execute(select(clicks.c.id, clicks.c.referrer))).all()
    finally:
        await repo.close()
    out: dict[int, list[int]] = {}
    for click_id, referrer in rows:
        out.setdefault(int(referrer.rsplit("/", 1)[1]), []).append(int(click_id))
    return out


def check_nothing_lost(load: Load, stored: dict[int, list[int]]) -> None:
    assert all(len(ids) == 1 for ids in stored.values()), "a click was stored twice"
    for marker, click_id in load.acked.items():
        assert stored.get(marker) == [click_id], f"acknowledged click {marker} lost"
    assert set(stored) <= load.sent
    assert len(load.acked) <= len(stored) <= len(load.sent)


async def create_banner(url: str) -> int:
    return int((await make_banner(url))["id"])


async def test_sigterm_mid_stream_loses_no_acknowledged_click(
    database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    server = ServerProcess(database_url, log, env=ENV).start()
    try:
        banner_id = await create_banner(server.url)
        load = Load(server.url, banner_id, total=3000)
        sender = asyncio.create_task(load.run(time.monotonic() + 30))
        await load.until(lambda: len(load.acked) >= 400, 20)
        code = await asyncio.to_thread(server.stop)  # SIGTERM, waits for the exit
        load.stop.set()
        await sender
    finally:
        server.stop()
    assert code == 0, log.read_text()
    # Cut mid-stream: requests went on during and after the shutdown and were refused.
    assert len(load.acked) >= 400 and len(load.acked) < len(load.sent) < 3000

    with ServerProcess(database_url, log, env=ENV) as again:
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.get(f"{again.url}/api/v1/banners/{banner_id}/stats")
        stats = r.json()
    stored = await stored_markers(database_url)
    check_nothing_lost(load, stored)
    assert stats["total_clicks"] == len(stored)  # the rollups committed with the clicks


@pytest.fixture
def proxied(postgres: PostgresFactory) -> Iterator[tuple[str, str, TcpProxy]]:
    url = postgres.create()
    unix, tcp = postgres_proxy_target(url)
    proxy = TcpProxy(target_unix=unix, target=tcp)
    proxy.start()
    try:
        yield url, via_proxy(url, proxy.port), proxy
    finally:
        proxy.close()
        postgres.drop(url)


async def test_database_outage_answers_503_and_ingest_resumes(
    proxied: tuple[str, str, TcpProxy], tmp_path: Path
) -> None:
    """With the outage spool turned off (tests/e2e/test_outage_spool.py has it on)."""
    direct_url, url, proxy = proxied
    env = {**ENV, "BANNERTRACK_SPOOL_ENABLED": "false"}
    with ServerProcess(url, tmp_path / "server.log", env=env) as server:
        banner_id = await create_banner(server.url)
        load = Load(server.url, banner_id, total=4000, concurrency=16)
        sender = asyncio.create_task(load.run(time.monotonic() + 30))
        try:
            await load.until(lambda: len(load.acked) >= 200, 15)
            proxy.stop()
            await load.until(lambda: load.statuses[503] >= 50, 15)
            acked_during = len(load.acked)
            await asyncio.sleep(0.3)  # a gap on purpose: the outage lasts while clicks arrive
            proxy.start()
            await load.until(lambda: len(load.acked) >= acked_during + 300, 15)
        finally:
            load.stop.set()
            await sender
    assert load.retry_after and all(int(v) >= 1 for v in load.retry_after)
    check_nothing_lost(load, await stored_markers(direct_url))
