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
from bannertrack.caching.keys import ENDPOINTS, TOP_BANNERS
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


@cache.command()
@url_option
@json_option
@_guard
def stats(url: str, as_json: bool) -> None:
    """Show hits, misses, evictions and size, overall and per namespace."""
    with Remote(url) as remote:
        body = remote.json("GET", "/api/v1/cache/stats")
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    if not body.get("enabled", True):
        out.print("the cache is switched off on this server")
        return
    table = Table(title=f"cache of {url}")
    table.add_column("namespace", no_wrap=True)
    for field in STATS_FIELDS:
        table.add_column(_HEADS.get(field, field), justify="right")
    for ns, s in sorted(body["namespaces"].items()):
        table.add_row(ns or "(none)", *(str(s[f]) for f in STATS_FIELDS))
    table.add_row("[bold]all[/bold]", *(f"[bold]{body[f]}[/bold]" for f in STATS_FIELDS))
    out.print(table)
    out.print(f"capacity: {body['size']} of {body['max_entries']} entries")


@cache.command()
@url_option
@json_option
@_guard
def clear(url: str, as_json: bool) -> None:
    """Drop every cached entry (admin)."""
    with Remote(url) as remote:
        body = remote.json("POST", "/api/v1/cache/clear")
    click.echo(json.dumps(body) if as_json else f"cleared {body['cleared']} entries")


@cache.command()
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
@click.option("--namespace", default=None, help="Drop a whole namespace, e.g. top_banners.")
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


@cache.command()
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


def _measure(
    remote: Remote, ids: list[int], samples: int, warm_reads: int, *, quiet: bool
) -> tuple[Timings, Timings, dict[str, tuple[int, int]]]:
    """Cold and warm latencies per endpoint, and its namespace's (hits, misses) meanwhile.

    The counters are read around each endpoint's own phase only: a with-stats load also
    reads banner:{id}, which must not count for "banner".
    """
    cold: Timings = {name: [] for name in ENDPOINTS}
    hot: Timings = {name: [] for name in ENDPOINTS}
    counted: dict[str, tuple[int, int]] = {}
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=quiet) as progress:
        task = progress.add_task("measuring", total=samples * len(ENDPOINTS))
        for name, (template, namespace) in ENDPOINTS.items():
            progress.update(task, description=f"measuring {name}")
            before = remote.json("GET", "/api/v1/cache/stats")["namespaces"][namespace]
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
            after = remote.json("GET", "/api/v1/cache/stats")["namespaces"][namespace]
            counted[name] = (after["hits"] - before["hits"], after["misses"] - before["misses"])
    return cold, hot, counted


def _result(
    name: str, cold: list[float], hot: list[float], counted: tuple[int, int]
) -> dict[str, Any]:
    hits, misses = counted
    cold_p50, hot_p50 = _ms(cold, 0.5), _ms(hot, 0.5)
    return {
        "endpoint": name,
        "cold_p50_ms": round(cold_p50, 3),
        "cold_p95_ms": round(_ms(cold, 0.95), 3),
        "warm_p50_ms": round(hot_p50, 3),
        "warm_p95_ms": round(_ms(hot, 0.95), 3),
        "speedup": round(cold_p50 / hot_p50, 2) if hot_p50 else None,
        "hit_rate": f"{hits / (hits + misses) * 100:.2f}%" if hits + misses else "n/a",
    }


def _print_results(rows: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for col in ("endpoint", "cold p50 ms", "cold p95 ms", "warm p50 ms", "warm p95 ms"):
        table.add_column(col, justify="left" if col == "endpoint" else "right")
    table.add_column("speedup", justify="right")
    table.add_column("hit rate", justify="right")
    for r in rows:
        times = (r[k] for k in ("cold_p50_ms", "cold_p95_ms", "warm_p50_ms", "warm_p95_ms"))
        table.add_row(
            r["endpoint"], *(f"{t:.2f}" for t in times), f"{r['speedup']}x", r["hit_rate"]
        )
    out.print(table)
    med = statistics.median(float(r["speedup"] or 0) for r in rows)
    out.print(f"median speedup of a hit over a miss: {med:.1f}x (HTTP round trip included)")


def _timed(remote: Remote, path: str) -> float:
    started = time.perf_counter()
    remote.request("GET", path)
    return time.perf_counter() - started
