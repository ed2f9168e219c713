"""``bannertrack cache ...``: steer the cache of a running server over HTTP."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.table import Table

from bannertrack.cache import STATS_FIELDS
from bannertrack.caching.keys import NAMESPACES
from bannertrack.cli.cache_test import measure_endpoints, print_results
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
        rows = measure_endpoints(remote, n_banners, samples, warm_reads, quiet=as_json)
    if as_json:
        click.echo(json.dumps({"url": url, "samples": samples, "results": rows}, indent=2))
        return
    print_results(
        out, rows, f"cache performance of {url} ({samples} cold, {samples * warm_reads} warm)"
    )
