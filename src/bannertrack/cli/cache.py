"""``bannertrack cache ...``: steer the cache of a running server over HTTP."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from bannertrack.cache import STATS_FIELDS
from bannertrack.caching.keys import ENDPOINTS, NAMESPACES, TOP_BANNERS
from bannertrack.cli.remote import Remote, RemoteError, err, stdout_console

out = stdout_console()

url_option = click.option(
    "--url",
    default="http://127.0.0.1:8080",
    show_default=True,
    envvar="BANNERTRACK_URL",
    help="Base URL of the running server.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _guard(fn: Callable[..., None]) -> Callable[..., None]:
    """Turn a RemoteError into one line on stderr and exit status 1, never a traceback."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except RemoteError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            sys.exit(1)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


_HEADS = {"hit_rate": "hit %", "deletes": "dels", "expirations": "expired", "evictions": "evicted"}
"""Short column heads for the stats table, so it fits 80 columns; other fields as named."""


@click.group()
def cache() -> None:
    """Inspect and steer the cache of a running server.

    Admin commands send the token from BANNERTRACK_ADMIN_TOKEN.
    """


@cache.command(short_help="Hits, misses and size per namespace and worker.")
@url_option
@json_option
@_guard
def stats(url: str, as_json: bool) -> None:
    """Show hits, misses, evictions and size per namespace and per worker, and the sum.

    With several workers the figures are summed over them; each worker's own row shows
    its pid and how old its figures are (another worker's are its latest snapshot).
    """
    with Remote(url) as remote:
        body = remote.json("GET", "/api/v1/cache/stats")
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    if not body.get("enabled", True):
        out.print("the cache is switched off on this server")
        return
    workers = body.get("workers", [])
    table = _stats_table(f"cache of {url}, all {len(workers) or 1} worker(s)", "namespace")
    for ns, s in sorted(body["namespaces"].items()):
        table.add_row(ns or "(none)", *(str(s[f]) for f in STATS_FIELDS))
    table.add_row("[bold]all[/bold]", *(f"[bold]{body[f]}[/bold]" for f in STATS_FIELDS))
    out.print(table)
    if workers:
        by_worker = _stats_table(
            "by worker (answered by pid {})".format(body["answered_by"]), "pid"
        )
        by_worker.add_column("age s", justify="right")
        for w in workers:
            by_worker.add_row(
                str(w["pid"]), *(str(w[f]) for f in STATS_FIELDS), f"{w['age_seconds']:.1f}"
            )
        out.print(by_worker)
    out.print(f"capacity: {body['size']} of {body['max_entries']} entries")


def _stats_table(title: str, first: str) -> Table:
    table = Table(title=title)
    table.add_column(first, no_wrap=True)
    for field in STATS_FIELDS:
        table.add_column(_HEADS.get(field, field), justify="right")
    return table


@cache.command()
@url_option
@json_option
@_guard
def clear(url: str, as_json: bool) -> None:
    """Drop every cached entry (admin)."""
    with Remote(url) as remote:
        body = remote.json("POST", "/api/v1/cache/clear")
    click.echo(json.dumps(body) if as_json else f"cleared {body['cleared']} entries")


@cache.command(short_help="Load banners, stats and top lists (admin).")
@url_option
@json_option
@_guard
def warm(url: str, as_json: bool) -> None:
    """Load active banners, their stats and the common top lists (admin)."""
    with Remote(url) as remote:
        body = remote.json("POST", "/api/v1/cache/warm")
    if as_json:
        click.echo(json.dumps(body))
    else:
        click.echo(f"loaded {body['loaded']} entries in {body['seconds'] * 1000:.1f} ms")


@cache.command()
@url_option
@click.option("--banner", "banner_id", type=int, default=None, help="Drop one banner's entries.")
@click.option(
    "--namespace",
    type=click.Choice(NAMESPACES),
    default=None,
    help="Drop a whole namespace.",
)
@json_option
@_guard
def invalidate(url: str, banner_id: int | None, namespace: str | None, as_json: bool) -> None:
    """Invalidate one banner's entries or a namespace (admin)."""
    if (banner_id is None) == (namespace is None):
        raise click.UsageError("give exactly one of --banner or --namespace")
    path = (
        f"/api/v1/cache/banner/{banner_id}/invalidate"
        if banner_id is not None
        else f"/api/v1/cache/namespace/{namespace}/invalidate"
    )
    with Remote(url) as remote:
        body = remote.json("POST", path)
    click.echo(json.dumps(body) if as_json else f"removed {body['removed']} entries")


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@cache.command(short_help="Cold vs warm latency of the cached reads (admin).")
@url_option
@click.option("--samples", default=30, show_default=True, help="Cold loads per endpoint.")
@click.option("--warm-reads", default=5, show_default=True, help="Warm reads after each load.")
@click.option("--banners", "n_banners", default=20, show_default=True, help="Banners to use.")
@json_option
@_guard
def test(url: str, samples: int, warm_reads: int, n_banners: int, as_json: bool) -> None:
    """Measure cold (miss) and warm (hit) latency of the cached endpoints (admin).

    For each sample the banner's entries are invalidated, one read is timed as a miss,
    then --warm-reads reads are timed as hits. Latencies are measured here, over HTTP,
    on the server you point at; the hit rate comes from the server's own counters.
    """
    with Remote(url) as remote:
        ids = _test_banners(remote, n_banners)
        cold, hot, counted = _measure(remote, ids, samples, warm_reads, quiet=as_json)
    rows = [_result(name, cold[name], hot[name], counted[name]) for name in ENDPOINTS]
    if as_json:
        click.echo(json.dumps({"url": url, "samples": samples, "results": rows}, indent=2))
        return
    _print_results(
        rows, f"cache performance of {url} ({samples} cold, {samples * warm_reads} warm)"
    )


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


def _print_results(rows: list[dict[str, Any]], title: str) -> None:
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
