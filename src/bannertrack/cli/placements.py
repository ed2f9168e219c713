"""``bannertrack placements``: list, create, fill and inspect placements on a running server.

Every command talks to the server over HTTP (``--url``; writes need
BANNERTRACK_ADMIN_TOKEN), prints a table or, with ``--json``, the server's JSON.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.table import Table

from bannertrack.cli.cache import _guard, json_option, url_option
from bannertrack.cli.remote import Remote, stdout_console

_TIME = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"])


def _utc(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


@click.group("placements", short_help="Create, fill and inspect placements (GET /p/{id}).")
def placements_group() -> None:
    """Placements: spots on a page that serve their banners by weight (GET /p/{id})."""


@placements_group.command("list")
@url_option
@json_option
@_guard
def list_placements(url: str, as_json: bool) -> None:
    """Every placement, with its size and how many banners it serves."""
    with Remote(url) as remote:
        page = remote.json("GET", "/api/v1/placements", params={"limit": 500})
        rows = [
            (p, remote.json("GET", f"/api/v1/placements/{p['id']}/banners")["banners"])
            for p in page["items"]
        ]
    if as_json:
        click.echo(json.dumps([{**p, "banners": b} for p, b in rows], indent=2))
        return
    table = Table(title=f"placements on {url}")
    for head in ("id", "name", "size", "banners (id:weight)"):
        table.add_column(head)
    for p, banners in rows:
        size = f"{p['width'] or '?'}x{p['height'] or '?'}"
        table.add_row(
            str(p["id"]),
            p["name"],
            size,
            " ".join(f"{b['banner_id']}:{b['weight']}" for b in banners),
        )
    stdout_console().print(table)


@placements_group.command("create")
@url_option
@click.argument("name")
@click.option("--width", type=int, default=None, help="Width in pixels.")
@click.option("--height", type=int, default=None, help="Height in pixels.")
@json_option
@_guard
def create(url: str, name: str, width: int | None, height: int | None, as_json: bool) -> None:
    """Create a placement (admin)."""
    with Remote(url) as remote:
        body = remote.json(
            "POST", "/api/v1/placements", json={"name": name, "width": width, "height": height}
        )
    click.echo(json.dumps(body) if as_json else f"created placement {body['id']}: {name}")


@placements_group.command("set", short_help="Replace a placement's banners (admin).")
@url_option
@click.argument("placement_id", type=int)
@click.argument("banners", nargs=-1)
@json_option
@_guard
def set_banners(url: str, placement_id: int, banners: tuple[str, ...], as_json: bool) -> None:
    """Replace a placement's banners: BANNER[:WEIGHT] ... (weight 1-1000, default 1; none
    empties it) (admin)."""
    items: list[dict[str, Any]] = []
    for spec in banners:
        banner, _, weight = spec.partition(":")
        if not banner.isdigit() or (weight and not weight.isdigit()):
            raise click.BadParameter(f"{spec!r} is not BANNER[:WEIGHT]", param_hint="BANNERS")
        items.append({"banner_id": int(banner), "weight": int(weight or 1)})
    with Remote(url) as remote:
        body = remote.json(
            "PUT", f"/api/v1/placements/{placement_id}/banners", json={"banners": items}
        )
    if as_json:
        click.echo(json.dumps(body))
    else:
        shown = " ".join(f"{b['banner_id']}:{b['weight']}" for b in body["banners"]) or "none"
        click.echo(f"placement {placement_id} serves: {shown}")


@placements_group.command("stats")
@url_option
@click.argument("placement_id", type=int)
@click.option("--from", "start", type=_TIME, default=None, help="Default: 7 days before --to.")
@click.option("--to", "end", type=_TIME, default=None, help="Default: now.")
@json_option
@_guard
def stats(
    url: str, placement_id: int, start: datetime | None, end: datetime | None, as_json: bool
) -> None:
    """Impressions, clicks and CTR of a placement, per banner."""
    end = end or datetime.now(UTC)
    start = start or end - timedelta(days=7)
    params = {"from": _utc(start), "to": _utc(end)}
    with Remote(url) as remote:
        body = remote.json("GET", f"/api/v1/placements/{placement_id}/stats", params=params)
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    table = Table(title=f"placement {placement_id}, {body['from']} .. {body['to']}")
    for head in ("banner", "impressions", "clicks", "valid clicks", "CTR"):
        table.add_column(head, justify="right")

    def ctr(value: float | None) -> str:
        return "-" if value is None else f"{value:.2%}"

    for b in body["banners"]:
        table.add_row(
            str(b["banner_id"]),
            str(b["impressions"]),
            str(b["clicks"]),
            str(b["valid_clicks"]),
            ctr(b["ctr"]),
        )
    table.add_row(
        "[bold]all[/bold]",
        str(body["impressions"]),
        str(body["clicks"]),
        str(body["valid_clicks"]),
        ctr(body["ctr"]),
    )
    stdout_console().print(table)


@placements_group.command("delete")
@url_option
@click.argument("placement_id", type=int)
@_guard
def delete(url: str, placement_id: int) -> None:
    """Delete a placement with its banner list and counts (admin)."""
    with Remote(url) as remote:
        remote.request("DELETE", f"/api/v1/placements/{placement_id}")
    click.echo(f"deleted placement {placement_id}")
