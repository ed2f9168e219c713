"""Several real ``bannertrack api`` processes on one PostgreSQL: one service, not several.

A write through one instance must be seen through every other once the bus has
delivered; the tests poll the other instance briefly (bounded) and record the delay.
Redis is cut through a loopback proxy mid-run: no request may fail meanwhile.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.support.banners import make_banner_sync
from tests.support.proxy import TcpProxy
from tests.support.server import ServerProcess
from tests.support.services import PostgresFactory, redis_proxy_target, redis_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
def pg_url(postgres: PostgresFactory) -> Iterator[str]:
    url = postgres.create()
    yield url
    postgres.drop(url)


def env(redis_url: str | None, **extra: str) -> dict[str, str]:
    values = {
        "BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN,
        "BANNERTRACK_AUTO_MIGRATE": "false",
        "BANNERTRACK_REDIS_URL": redis_url or "",
        "BANNERTRACK_REDIS_PREFIX": f"s{uuid.uuid4().hex[:8]}:",
        # The proxy's cut resets the connections, so an outage is seen at once; a short
        # heartbeat would only declare spurious ones on a busy machine (3 missed = lost).
        "BANNERTRACK_BUS_HEARTBEAT": "1.0",
        "BANNERTRACK_BUS_BACKOFF_MAX": "0.2",
        "BANNERTRACK_LOG_LEVEL": "WARNING",
    }
    return values | extra


def until(check: Callable[[], bool], timeout: float = 3.0, step: float = 0.002) -> float:
    """Seconds until ``check()`` held; fails after ``timeout``."""
    started = time.perf_counter()
    while not check():
        elapsed = time.perf_counter() - started
        assert elapsed < timeout, "not seen within the bound"
        time.sleep(step)
    return time.perf_counter() - started


def servers(
    stack: ExitStack, tmp_path: Path, database_url: str, environ: dict[str, str], n: int = 2
) -> list[ServerProcess]:
    return [
        stack.enter_context(ServerProcess(database_url, tmp_path / f"server{i}.log", env=environ))
        for i in range(n)
    ]


def check_consistency(a: httpx.Client, b: httpx.Client, writes: int = 30) -> list[float]:
    banner = make_banner_sync(a, name="b")
    path = f"/api/v1/banners/{banner['id']}"
    assert b.get(path).json()["name"] == "b"  # B caches the banner (and the with-stats view)
    b.get(f"{path}/with-stats")
    delays = []
    for i in range(writes):
        r = a.put(path, json={"name": f"n{i}"}, headers=ADMIN)
        assert r.status_code == 200, r.text
        delays.append(until(lambda i=i: b.get(path).json()["name"] == f"n{i}"))
    assert b.get(f"{path}/with-stats").json()["banner"]["name"] == f"n{writes - 1}"
    # A click through A reaches B's cached statistics too.
    before = b.get(f"{path}/stats").json()["total_clicks"]
    assert a.post(f"{path}/clicks", json={}, headers=ADMIN).status_code == 201
    until(lambda: b.get(f"{path}/stats").json()["total_clicks"] == before + 1)
    return delays


@pytest.mark.parametrize("transport", ["redis", "postgres"])
def test_a_write_through_one_instance_is_seen_through_the_other(
    transport: str, redis_url: str, pg_url: str, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        a_proc, b_proc = servers(
            stack, tmp_path, pg_url, env(redis_url if transport == "redis" else None)
        )
        a = stack.enter_context(httpx.Client(base_url=a_proc.url))
        b = stack.enter_context(httpx.Client(base_url=b_proc.url))
        delays = check_consistency(a, b)
        health = b.get("/healthz").json()["checks"]["bus"]
        assert health["kind"] == transport and health["connected"]
        assert health["applied"] >= len(delays)
        # Generous for a loaded CI box; the benchmark reports the real figures.
        assert statistics.median(delays) < 0.1, delays


def test_redis_outage_never_fails_a_request_and_recovery_clears(
    redis_url: str, pg_url: str, tmp_path: Path
) -> None:
    unix, tcp = redis_proxy_target(redis_url)
    proxy = TcpProxy(target_unix=unix, target=tcp)
    proxy.start()
    with ExitStack() as stack:
        stack.callback(proxy.close)
        environ = env(f"redis://127.0.0.1:{proxy.port}/0", BANNERTRACK_BUS_DEGRADED_TTL="0.5")
        a_proc, b_proc = servers(stack, tmp_path, pg_url, environ)
        a = stack.enter_context(httpx.Client(base_url=a_proc.url))
        b = stack.enter_context(httpx.Client(base_url=b_proc.url))
        check_consistency(a, b, writes=3)
        banner = make_banner_sync(a, name="b")
        path = f"/api/v1/banners/{banner['id']}"

        def bus(client: httpx.Client) -> dict[str, Any]:
            r = client.get("/healthz")
            assert r.status_code == 200  # degraded is reported, never "not ready"
            return dict(r.json()["checks"]["bus"])

        # Counted from here: a start on a busy machine may itself have begun degraded.
        outages = {name: bus(c)["outages"] for name, c in (("a", a), ("b", b))}
        recoveries = {name: bus(c)["recoveries"] for name, c in (("a", a), ("b", b))}
        proxy.stop()
        until(lambda: bus(a)["status"] == bus(b)["status"] == "degraded")
        assert a.get("/healthz").json()["status"] == "degraded"
        # Reads, writes and clicks on both instances keep working while Redis is gone.
        for i in range(10):
            for client in (a, b):
                assert client.get(path).status_code == 200
                assert client.get(f"{path}/with-stats").status_code == 200
                assert client.get("/api/v1/banners/top?limit=5").status_code == 200
                assert client.post(f"{path}/clicks", json={}, headers=ADMIN).status_code == 201
            r = a.put(path, json={"name": f"down{i}"}, headers=ADMIN)
            assert r.status_code == 200
        # Without the bus, B is stale at most the degraded TTL (0.5 s here).
        until(lambda: b.get(path).json()["name"] == "down9", timeout=2.0)
        outage = bus(a)
        assert outage["connected"] is False and outage["outages"] == outages["a"] + 1
        assert outage["publishes_skipped"] >= 10

        proxy.start()
        until(lambda: bus(a)["connected"] and bus(b)["connected"])
        assert bus(a)["recoveries"] == recoveries["a"] + 1
        assert bus(b)["recoveries"] == recoveries["b"] + 1
        assert bus(b)["outages"] == outages["b"] + 1
        # Every instance dropped its L1 on recovery (nothing read since).
        assert b.get("/api/v1/cache/stats").json()["size"] == 0
        # And the bus carries writes again.
        assert b.get(path).json()["name"] == "down9"
        assert a.put(path, json={"name": "up"}, headers=ADMIN).status_code == 200
        until(lambda: b.get(path).json()["name"] == "up", timeout=1.0)


def test_workers_share_the_port_and_stay_consistent(redis_url: str, tmp_path: Path) -> None:
    """``--workers 2`` on SQLite with Redis: whichever worker answers, it is up to date."""
    database = f"sqlite:///{tmp_path / 'w.db'}"
    environ = env(redis_url, BANNERTRACK_AUTO_MIGRATE="true")
    server = ServerProcess(database, tmp_path / "workers.log", env=environ, args=("--workers", "2"))
    with server, httpx.Client(base_url=server.url) as client:
        banner = make_banner_sync(client, name="b")
        path = f"/api/v1/banners/{banner['id']}"
        seen: set[str] = set()
        for i in range(15):
            # Fresh connections, so both workers get to cache and to answer.
            for _ in range(4):
                with httpx.Client(base_url=server.url) as other:
                    other.get(path)
            assert client.put(path, json={"name": f"w{i}"}, headers=ADMIN).status_code == 200
            time_left = until(
                lambda i=i: all(
                    httpx.get(server.url + path).json()["name"] == f"w{i}" for _ in range(4)
                ),
                timeout=2.0,
            )
            assert time_left < 2.0
            seen.add(httpx.get(f"{server.url}/healthz").json()["checks"]["bus"]["instance"])
        assert len(seen) == 2, "both workers should have answered"


def test_several_workers_on_sqlite_without_redis_are_refused(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'w.db'}"
    server = ServerProcess(
        database, tmp_path / "refused.log", env=env(None), args=("--workers", "2")
    )
    try:
        with pytest.raises(RuntimeError, match="need BANNERTRACK_REDIS_URL"):
            server.start()
    finally:
        server.stop()  # closes the log of the process that exited
