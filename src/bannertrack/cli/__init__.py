"""``bannertrack``: run the service, migrate the database, load demo data, steer the cache.

Commands that change the database (``migrate``, ``demo``) work on
``BANNERTRACK_DATABASE_URL`` directly; the ``cache`` commands talk to a running server
over HTTP, because the cache lives in the server's memory.

The server and database stacks (granian, SQLAlchemy, Alembic) are imported inside the
commands that use them, so `--help` and the `cache` commands start in a fraction of the
time.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from bannertrack import __version__
from bannertrack.cli.backup import backup as backup_command
from bannertrack.cli.cache import cache as cache_group
from bannertrack.cli.export import export as export_command
from bannertrack.cli.placements import placements_group
from bannertrack.config import Settings, load_settings
from bannertrack.errors import BannertrackError

T = TypeVar("T")
err = Console(stderr=True, soft_wrap=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except BannertrackError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except BannertrackError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bannertrack")
def main() -> None:
    """bannertrack: banner click tracking with a fast, correct cache.

    Configuration comes from BANNERTRACK_* environment variables (see the README);
    command-line flags override them.
    """


@main.command()
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8080).")
@click.option("--workers", type=int, default=None, help="Worker processes (default 1).")
@click.option("--no-cache", is_flag=True, default=False, help="Serve every read from the database.")
def api(host: str | None, port: int | None, workers: int | None, no_cache: bool) -> None:
    """Run the HTTP API (granian serving Litestar)."""
    from bannertrack.bootstrap import check_topology
    from bannertrack.cli.serving import event_loop, port_in_use, raise_fd_limit, workers_dir
    from bannertrack.clicks.salt_key import load_salt_key

    # Workers are separate processes that read the environment: flags travel that way.
    for name, value in (("HOST", host), ("PORT", port), ("WORKERS", workers)):
        if value is not None:
            os.environ[f"BANNERTRACK_{name}"] = str(value)
    if no_cache:
        os.environ["BANNERTRACK_CACHE_ENABLED"] = "false"
    settings = _settings()
    try:
        check_topology(settings)
        loop = event_loop(settings.http_loop)
        # Once, before the workers start: a missing key file is created here, not raced.
        load_salt_key(settings.salt_key, settings.salt_key_file)
    except BannertrackError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)
    taken = port_in_use(settings.host, settings.port)
    if taken is not None:
        # granian binds with SO_REUSEPORT: a second server would share the port silently.
        err.print(f"error: {taken}", highlight=False)
        sys.exit(1)
    if settings.auto_migrate:
        # Once, before the workers start, so N workers do not race the same migration.
        _migrate(settings)
        os.environ["BANNERTRACK_AUTO_MIGRATE"] = "false"
    raise_fd_limit()
    with workers_dir(settings.workers_dir) as shared:
        # The workers find each other's figures there (bannertrack.bootstrap.workers).
        os.environ["BANNERTRACK_WORKERS_DIR"] = shared
        _serve(settings, loop)


def _serve(settings: Settings, loop: Any) -> None:
    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings

    Granian(
        "bannertrack.api.app:app_from_env",
        factory=True,
        address=settings.host,
        port=settings.port,
        workers=settings.workers,
        interface=Interfaces.ASGI,
        loop=loop,
        log_access=False,  # an access log would write client IPs
        backlog=settings.http_backlog,
        backpressure=settings.http_backpressure,
        http1_settings=HTTP1Settings(
            header_read_timeout=int(settings.http_header_timeout * 1000),
            keep_alive=settings.http_keep_alive,
        ),
    ).serve()


def _migrate(settings: Settings) -> str | None:
    from bannertrack.bootstrap import open_database
    from bannertrack.db.migrate import current_revision

    async def go() -> str | None:
        async with open_database(settings, migrate=True) as database:
            return await current_revision(database.engine)

    return _run(go())


@main.command()
def migrate() -> None:
    """Apply pending database migrations (idempotent)."""
    settings = _settings()
    revision = _migrate(settings)
    click.echo(f"database at revision {revision}")


@main.command()
@click.option("--banners", "n_banners", default=12, show_default=True, help="Banners to create.")
@click.option("--clicks", "n_clicks", default=20_000, show_default=True, help="Clicks to record.")
@click.option("--days", default=14, show_default=True, help="Spread clicks over this many days.")
@click.option("--seed", default=None, type=int, help="Random seed for a repeatable data set.")
@click.option(
    "--reset",
    is_flag=True,
    default=False,
    help="Delete every banner (with its clicks and counts) first and number the new ones "
    "from 1 again; without it a database that already holds banners is left alone.",
)
@click.option(
    "--url",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="A running server whose cache is cleared afterwards, if one answers there.",
)
def demo(n_banners: int, n_clicks: int, days: int, seed: int | None, reset: bool, url: str) -> None:
    """Load demo banners, clicks and impressions into the database.

    Clicks are spread over --days with a daytime peak; about 7 % come from bots and
    link previews and some visitors click twice within the hour (repeats), so the
    valid/bot/repeat counts and the CTR show what they mean. It writes to the database
    directly, then asks a server running at --url (if any) to clear its cache, so no
    cached statistic predates the demo data.
    """
    if n_banners < 1 or n_clicks < 0 or days < 1:
        raise click.UsageError("need --banners >= 1, --clicks >= 0 and --days >= 1")
    done, message = _run(_load_demo(n_banners, n_clicks, days, random.Random(seed), reset))
    if not done:
        err.print(f"[red]error:[/red] {message}", highlight=False)
        sys.exit(1)
    click.echo(message)
    _clear_running_server(url)


async def _load_demo(
    n_banners: int, n_clicks: int, days: int, rng: random.Random, reset: bool
) -> tuple[bool, str]:
    """(loaded, what to print): the demo data, or why the database was left alone."""
    from datetime import timedelta

    from bannertrack.bootstrap import open_database
    from bannertrack.cli.demo import (
        DemoTally,
        create_banners,
        create_placements,
        generate_clicks,
        impressions_for,
    )
    from bannertrack.timeutil import utcnow

    now = utcnow()
    start = now - timedelta(days=days)
    tally = DemoTally()
    # Banners are dated at the period's start, so no demo click predates its banner.
    async with open_database(load_settings(), migrate=True, clock=lambda: start) as repo:
        existing = await repo.list_banners(0, 500)
        placements = await repo.list_placements(0, 500)
        if (existing.total or placements.total) and not reset:
            return False, (
                f"the database already holds {existing.total} banners and "
                f"{placements.total} placements; nothing was loaded. `bannertrack demo "
                "--reset` deletes them all and loads the demo."
            )
        while existing.items:
            for banner in existing.items:
                await repo.delete_banner(banner.id)
            existing = await repo.list_banners(0, 500)
        while placements.items:
            for placement in placements.items:
                await repo.delete_placement(placement.id)
            placements = await repo.list_placements(0, 500)
        if reset:
            # A reset database numbers its banners from 1 as a fresh one does, so the
            # README's commands (/c/1, /api/v1/banners/1/...) work after it too.
            await repo.restart_banner_ids()
        banners = await create_banners(repo, n_banners, rng)
        placed = await create_placements(repo, banners, rng)
        columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
        with Progress(*columns, TimeRemainingColumn(), console=err) as progress:
            task = progress.add_task("recording clicks", total=n_clicks)
            async for batch in generate_clicks(banners, n_clicks, now, rng, tally, placed=placed):
                await repo.record_clicks(batch)
                progress.advance(task, len(batch))
        impressions = impressions_for(tally, rng)
        for i in range(0, len(impressions), 1000):
            await repo.record_impressions(impressions[i : i + 1000])
    return True, (
        f"created banners {banners[0].id}..{banners[-1].id} and 3 placements serving them: "
        f"{tally.clicks} clicks over "
        f"{days} days ({tally.bots} from bots, {tally.follow_ups} second clicks within "
        f"the hour) and {sum(i.count for i in impressions)} impressions"
    )


def _clear_running_server(url: str) -> None:
    from bannertrack.cli.remote import Remote, RemoteError

    try:
        with Remote(url, timeout=5) as remote:
            body = remote.json("POST", "/api/v1/cache/clear")
    except RemoteError as exc:
        if "cannot reach" not in str(exc):
            err.print(f"[yellow]note:[/yellow] could not clear the server's cache: {exc}")
        return
    click.echo(f"cleared {body['cleared']} cached entries on {url}")


main.add_command(cache_group)
main.add_command(export_command)
main.add_command(placements_group)
main.add_command(backup_command)
