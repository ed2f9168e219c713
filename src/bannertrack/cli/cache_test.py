"""``bannertrack cache test``: cold (miss) and warm (hit) latency of the cached endpoints.

Measured over HTTP on the server pointed at; the hit rates come from the server's own
counters, read around each endpoint's phase and per worker.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from bannertrack.caching.keys import ENDPOINTS, TOP_BANNERS
from bannertrack.cli.remote import Remote, RemoteError, err


def measure_endpoints(
    remote: Remote, n_banners: int, samples: int, warm_reads: int, *, quiet: bool
) -> list[dict[str, Any]]:
    """One result row per cached endpoint (``bannertrack cache test --json``'s rows)."""
    ids = _test_banners(remote, n_banners)
    cold, hot, counted = _measure(remote, ids, samples, warm_reads, quiet=quiet)
    return [_result(name, cold[name], hot[name], counted[name]) for name in ENDPOINTS]


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _test_banners(remote: Remote, n_banners: int) -> list[int]:
    """Banner ids to measure with, after checking the test can run on this server."""
    if not remote.has_token:
        raise RemoteError("set BANNERTRACK_ADMIN_TOKEN: the test invalidates entries")
    page = remote.json("GET", "/api/v1/banners", params={"limit": n_banners})
    ids = [b["id"] for b in page["items"]]
    if not ids:
        raise RemoteError("the server has no banners; load some with `bannertrack demo`")
    if not remote.json("GET", "/api/v1/cache/stats").get("enabled", True):
        raise RemoteError("the cache is switched off on this server")
    return ids


Timings = dict[str, list[float]]


Counted = dict[int, tuple[int, int]]  # (hits, misses) by worker pid


def _fresh_stats(remote: Remote, since: float, within: float = 10.0) -> dict[str, Any]:
    """The cache stats once every worker's figures were taken after ``since`` (a
    ``time.monotonic()``): another worker's come from a snapshot up to a second old."""
    deadline = time.monotonic() + within
    while True:
        body: dict[str, Any] = remote.json("GET", "/api/v1/cache/stats")
        elapsed = time.monotonic() - since
        if all(w["age_seconds"] < elapsed for w in body.get("workers", [])):
            return body
        if time.monotonic() > deadline:
            raise RemoteError("the server's workers did not report fresh figures in time")
        time.sleep(0.05)


def _by_worker(body: dict[str, Any], namespace: str) -> Counted:
    workers = body.get("workers") or [{"pid": 0, "namespaces": body["namespaces"]}]
    return {
        w["pid"]: (w["namespaces"][namespace]["hits"], w["namespaces"][namespace]["misses"])
        for w in workers
    }


def _measure(
    remote: Remote, ids: list[int], samples: int, warm_reads: int, *, quiet: bool
) -> tuple[Timings, Timings, dict[str, Counted]]:
    """Cold and warm latencies per endpoint, and its namespace's (hits, misses) meanwhile,
    by worker.

    The counters are read around each endpoint's own phase only: a with-stats load also
    reads banner:{id}, which must not count for "banner".
    """
    cold: Timings = {name: [] for name in ENDPOINTS}
    hot: Timings = {name: [] for name in ENDPOINTS}
    counted: dict[str, Counted] = {}
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
    body = _fresh_stats(remote, time.monotonic())
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=quiet) as progress:
        task = progress.add_task("measuring", total=samples * len(ENDPOINTS))
        for name, (template, namespace) in ENDPOINTS.items():
            progress.update(task, description=f"measuring {name}")
            before = _by_worker(body, namespace)
            for i in range(samples):
                banner_id = ids[i % len(ids)]
                if namespace == TOP_BANNERS:
                    remote.request("POST", f"/api/v1/cache/namespace/{TOP_BANNERS}/invalidate")
                else:
                    remote.request("POST", f"/api/v1/cache/banner/{banner_id}/invalidate")
                path = template.format(id=banner_id)
                cold[name].append(_timed(remote, path))
                hot[name] += [_timed(remote, path) for _ in range(warm_reads)]
                progress.advance(task)
            body = _fresh_stats(remote, time.monotonic())
            after = _by_worker(body, namespace)
            counted[name] = {
                pid: (h - before.get(pid, (0, 0))[0], m - before.get(pid, (0, 0))[1])
                for pid, (h, m) in after.items()
            }
    return cold, hot, counted


def _ratio(hits: int, misses: int) -> float | None:
    return hits / (hits + misses) if hits + misses else None


def _percent(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio * 100:.2f}%"


def _result(name: str, cold: list[float], hot: list[float], counted: Counted) -> dict[str, Any]:
    hits = sum(h for h, _ in counted.values())
    misses = sum(m for _, m in counted.values())
    cold_p50, hot_p50 = _ms(cold, 0.5), _ms(hot, 0.5)
    return {
        "endpoint": name,
        "cold_p50_ms": round(cold_p50, 3),
        "cold_p95_ms": round(_ms(cold, 0.95), 3),
        "warm_p50_ms": round(hot_p50, 3),
        "warm_p95_ms": round(_ms(hot, 0.95), 3),
        "speedup": round(cold_p50 / hot_p50, 2) if hot_p50 else None,
        "hits": hits,
        "misses": misses,
        "hit_rate": _percent(_ratio(hits, misses)),
        "hit_ratio": _ratio(hits, misses),
        "workers": [
            {"pid": pid, "hits": h, "misses": m, "hit_ratio": _ratio(h, m)}
            for pid, (h, m) in sorted(counted.items())
        ],
    }


def print_results(out: Console, rows: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for col in ("endpoint", "cold p50 ms", "cold p95 ms", "warm p50 ms", "warm p95 ms"):
        table.add_column(col, justify="left" if col == "endpoint" else "right")
    table.add_column("speedup", justify="right")
    table.add_column("hit rate", justify="right")
    table.add_column("by worker (pid: hit rate)")
    for r in rows:
        times = (r[k] for k in ("cold_p50_ms", "cold_p95_ms", "warm_p50_ms", "warm_p95_ms"))
        workers = ", ".join(f"{w['pid']}: {_percent(w['hit_ratio'])}" for w in r["workers"])
        table.add_row(
            r["endpoint"],
            *(f"{t:.2f}" for t in times),
            f"{r['speedup']}x",
            r["hit_rate"],
            workers,
        )
    out.print(table)
    med = statistics.median(float(r["speedup"] or 0) for r in rows)
    out.print(f"median speedup of a hit over a miss: {med:.1f}x (HTTP round trip included)")


def _timed(remote: Remote, path: str) -> float:
    started = time.perf_counter()
    remote.request("GET", path)
    return time.perf_counter() - started
