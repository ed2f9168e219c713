"""``--workers 2``: the cache stats, the CLI and ``/metrics`` count every worker.

Reads go over fresh connections, so the kernel spreads them over both workers; the
figures are then polled (bounded) until every worker's snapshot has caught up, and must
add up to exactly the reads sent, whichever worker answers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.support.server import ServerProcess
from tests.support.services import redis_server

from bannertrack.cli import main

pytestmark = pytest.mark.slow

READS = 60
BANNER = {"name": "b", "image_url": "https://a.example/i.png", "target_url": "https://a.example/"}
ROUTE = "/api/v1/banners/{banner_id}/stats"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, int]]:
    tmp = tmp_path_factory.mktemp("workers")
    with redis_server() as redis_url:
        env = {
            "BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN,
            "BANNERTRACK_REDIS_URL": redis_url,
            "BANNERTRACK_REDIS_PREFIX": "workers:",
            "BANNERTRACK_LOG_LEVEL": "WARNING",
        }
        srv = ServerProcess(
            f"sqlite:///{tmp / 'w.db'}", tmp / "server.log", env=env, args=("--workers", "2")
        )
        with srv:
            banner = httpx.post(f"{srv.url}/api/v1/banners", json=BANNER, headers=ADMIN).json()
            for _ in range(READS):
                with httpx.Client(base_url=srv.url) as fresh:  # a new connection each
                    assert fresh.get(f"/api/v1/banners/{banner['id']}/stats").status_code == 200
            yield srv, banner["id"]


def eventually(read: Callable[[], Any], done: Callable[[Any], bool], within: float = 10.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"not reached within {within} s: {value}"
        time.sleep(0.1)


def gets(row: dict[str, Any]) -> int:
    return int(row["hits"] + row["misses"])


def test_the_stats_endpoint_lists_both_workers_and_their_sum(
    server: tuple[ServerProcess, int],
) -> None:
    srv, _ = server
    body = eventually(
        lambda: httpx.get(f"{srv.url}/api/v1/cache/stats").json(),
        lambda b: (
            len(b["workers"]) == 2
            and sum(gets(w["namespaces"]["click_stats"]) for w in b["workers"]) == READS
        ),
    )
    pids = {w["pid"] for w in body["workers"]}
    assert body["answered_by"] in pids
    assert all(gets(w["namespaces"]["click_stats"]) > 0 for w in body["workers"]), (
        "both workers should have answered reads"
    )
    assert gets(body["namespaces"]["click_stats"]) == READS
    for field in ("hits", "misses", "sets", "size", "max_entries"):
        assert body[field] == sum(w[field] for w in body["workers"]), field
    assert 0 <= body["hit_ratio"] <= 1
    assert body["hit_rate"] == f"{body['hit_ratio'] * 100:.2f}%"
    answering = {w["pid"]: w["age_seconds"] for w in body["workers"]}
    assert answering[body["answered_by"]] == 0


def test_metrics_carry_every_workers_series(server: tuple[ServerProcess, int]) -> None:
    srv, _ = server

    def scrape() -> dict[str, dict[str, float]]:
        """Per pid: click_stats gets, and requests of the stats route."""
        text = httpx.get(f"{srv.url}/metrics").text
        out: dict[str, dict[str, float]] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                pid = s.labels.get("pid")
                assert pid, f"{s.name} has no pid label"
                row = out.setdefault(pid, {"gets": 0.0, "requests": 0.0})
                if s.name in ("bannertrack_cache_hits_total", "bannertrack_cache_misses_total"):
                    row["gets"] += s.value if s.labels["namespace"] == "click_stats" else 0
                if s.name == "bannertrack_request_seconds_count" and s.labels["route"] == ROUTE:
                    row["requests"] += s.value
        return out

    by_pid = eventually(
        scrape, lambda m: len(m) == 2 and sum(r["requests"] for r in m.values()) == READS
    )
    assert sum(r["gets"] for r in by_pid.values()) == READS
    assert all(r["requests"] > 0 for r in by_pid.values())


def test_the_cli_shows_each_worker(server: tuple[ServerProcess, int]) -> None:
    srv, _ = server
    env = {"BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN}
    result = CliRunner().invoke(main, ["cache", "stats", "--url", srv.url, "--json"], env=env)
    body = json.loads(result.stdout)
    assert result.exit_code == 0 and len(body["workers"]) == 2
    assert isinstance(body["hit_ratio"], float) and body["hit_rate"].endswith("%")
    result = CliRunner().invoke(main, ["cache", "stats", "--url", srv.url], env=env)
    assert result.exit_code == 0, result.output
    assert "all 2 worker(s)" in result.stdout
    for w in body["workers"]:
        assert str(w["pid"]) in result.stdout
    result = CliRunner().invoke(
        main,
        ["cache", "test", "--url", srv.url, "--samples", "4", "--warm-reads", "2", "--json"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    for row in json.loads(result.stdout)["results"]:
        # Every read of the test was counted by some worker: 4 misses, 8 hits.
        assert (row["hits"], row["misses"]) == (8, 4), row
        assert sum(w["hits"] + w["misses"] for w in row["workers"]) == 12
        assert row["hit_ratio"] == pytest.approx(8 / 12)
