"""``bannertrack backup``: a consistent copy of the SQLite database, while serving."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bannertrack.cli.remote import err
from bannertrack.config import load_settings
from bannertrack.errors import BannertrackError


@click.command(short_help="Copy the SQLite database while the server runs.")
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, default=False, help="Replace DESTINATION if it exists.")
def backup(destination: Path, force: bool) -> None:
    """Copy the SQLite database to DESTINATION while the server keeps running.

    Uses SQLite's online backup API in one read transaction: the copy holds every click
    committed before it started, and the server's writes go on meanwhile. The copy is
    checked (PRAGMA quick_check) before it takes its name. The salt key is not in the
    database; keep it apart from the copies (docs/deployment.md). For PostgreSQL use
    pg_dump.
    """
    from bannertrack.db.backup import backup_sqlite, sqlite_path

    try:
        source = sqlite_path(load_settings().database_url)
        result = backup_sqlite(source, destination, overwrite=force)
    except BannertrackError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)
    click.echo(
        f"backed up {source} to {result.path}: {result.bytes} bytes, "
        f"{result.banners} banners, {result.clicks} clicks"
    )
