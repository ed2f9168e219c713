"""Honest health and fast failure (issue 12, item 9): real faults, bounded waits.

A frozen PostgreSQL is a loopback proxy that stops forwarding while its connections stay
open (what SIGSTOP or a black-holed network looks like). A full disk is a real one: the
server runs in its own mount namespace on a 2 MiB tmpfs (``unshare -m``, private to that
process tree, gone with it).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.support.banners import make_banner, make_banner_sync
from tests.support.proxy import TcpProxy
from tests.support.server import ServerProcess
from tests.support.waiting import wait_until

ENV = {"BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN, "BANNERTRACK_LOG_LEVEL": "WARNING"}


async def test_frozen_postgres_answers_503_in_seconds_and_logs_once(
    proxied_url: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    """With the outage spool turned off: today's 503s (test_outage_spool.py has it on)."""
    url, proxy = proxied_url
    env = {
        **ENV,
        "BANNERTRACK_SPOOL_ENABLED": "false",
        "BANNERTRACK_DB_TIMEOUT": "1",
        "BANNERTRACK_DB_CONNECT_TIMEOUT": "1",
        "BANNERTRACK_DB_POOL_TIMEOUT": "1",
        "BANNERTRACK_HEALTH_PROBE_INTERVAL": "0.2",
    }
    log = tmp_path / "server.log"
    with ServerProcess(url, log, env=env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            banner = (await make_banner(client, name="f"))["id"]
            assert (await client.get(f"/c/{banner}")).status_code == 302
            proxy.freeze()
            try:
                started = time.monotonic()
                r = await client.get(f"/c/{banner}")
                click_wait = time.monotonic() - started
                assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
                started = time.monotonic()
                misses = await asyncio.gather(
                    *(client.get(f"/api/v1/banners/top?limit={n}") for n in range(1, 41))
                )
                misses_wait = time.monotonic() - started
                started = time.monotonic()
                health = await client.get("/healthz")
                health_wait = time.monotonic() - started
            finally:
                proxy.thaw()
            # Thawed: the service recovers by itself.
            answers: list[httpx.Response] = []

            async def recovered() -> bool:
                answers.append(await client.get(f"/c/{banner}"))
                return answers[-1].status_code == 302

            await wait_until(recovered, timeout=15, interval=0.2, what=lambda: answers[-1].text)
    statuses = Counter(m.status_code for m in misses)
    warnings = [line for line in log.read_text().splitlines() if "answering 503" in line]
    print(
        f"frozen PostgreSQL: click 503 in {click_wait:.2f}s, 40 misses {dict(statuses)} "
        f"in {misses_wait:.2f}s, /healthz {health.status_code} in {health_wait:.2f}s, "
        f"{len(warnings)} '503' log lines for 41 refusals"
    )
    assert click_wait < 4.0
    assert statuses == {503: 40} and misses_wait < 6.0
    assert health.status_code == 503 and health_wait < 4.0
    assert health.json()["checks"]["database"]["status"] == "down"
    assert len(warnings) <= 3  # one per kind of 503 per interval, not one per request


def test_full_disk_is_reported_by_healthz_and_no_acknowledged_click_is_lost(
    tmp_path: Path,
) -> None:
    small = tmp_path / "small"
    small.mkdir()
    mount = 'mount -t tmpfs -o size=2m tmpfs "$0" && exec "$@"'
    wrapper = ("unshare", "--mount", "sh", "-c", mount, str(small))
    env = {**ENV, "BANNERTRACK_HEALTH_PROBE_INTERVAL": "0.2"}
    db = f"sqlite:///{small / 'bt.db'}"
    with (
        ServerProcess(db, tmp_path / "server.log", env=env, wrapper=wrapper) as server,
        httpx.Client(base_url=server.url, timeout=20) as client,
    ):
        banner = make_banner_sync(client, name="f")["id"]
        assert client.get("/healthz").status_code == 200
        acked, statuses = 0, Counter[int]()
        for i in range(3_000):  # bounded: 2 MiB holds about a thousand of these
            body = {"referrer": f"https://r.example/{'x' * 1900}/{i}"}
            r = client.post(f"/api/v1/banners/{banner}/clicks", json=body, headers=ADMIN)
            statuses[r.status_code] += 1
            acked += r.status_code == 201
            if statuses[503] >= 5:
                break
        health = client.get("/healthz")
        stats = client.get(f"/api/v1/banners/{banner}/stats")
    print(f"disk full: {dict(statuses)}; /healthz {health.status_code} {health.json()}")
    assert statuses[503] >= 5 and set(statuses) == {201, 503}
    assert health.status_code == 503 and health.headers["retry-after"]
    checks = health.json()["checks"]
    assert checks["ingest"]["status"] == "failing" or checks["database"]["status"] == "down"
    assert stats.status_code == 200 and stats.json()["total_clicks"] == acked


async def test_write_probe_reports_a_read_only_database(tmp_path: Path) -> None:
    """A database that answers reads but refuses writes is not healthy (SQLite, mode=ro)."""
    from sqlalchemy import text

    from bannertrack.db.engine import create_engine
    from bannertrack.db.migrate import upgrade
    from bannertrack.db.probe import WriteProbe

    path = tmp_path / "bt.db"
    writable = create_engine(f"sqlite:///{path}")
    await upgrade(writable)
    assert await WriteProbe(writable, interval=60).check() is None
    await writable.dispose()
    read_only = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        async with read_only.connect() as conn:  # reads still work
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
        probe = WriteProbe(read_only, interval=60)
        error = await probe.check()
        assert error is not None and "readonly" in error.replace("-", "").replace(" ", "")
        assert await probe.check() == error  # within the interval: the last answer, no write
    finally:
        await read_only.dispose()
