"""``bannertrack export``: download a banner's raw clicks (or its conversions) as CSV from
a running server."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from bannertrack.cli.cache import _guard, url_option
from bannertrack.cli.remote import Remote, err


@click.command(short_help="Download a banner's raw clicks as CSV (admin).")
@url_option
@click.option("--banner", "banner_id", type=int, required=True, help="Banner id.")
@click.option(
    "--from",
    "start",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
    default=None,
    help="First instant (UTC unless an offset is given); default: the first click.",
)
@click.option(
    "--to",
    "end",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
    default=None,
    help="End instant, excluded; default: now.",
)
@click.option(
    "--conversions",
    is_flag=True,
    help="The banner's conversions instead of its clicks "
    "(occurred_at, goal, value, currency, click_id, placement_id).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="File to write; default: standard output.",
)
@_guard
def export(
    url: str,
    banner_id: int,
    start: datetime | None,
    end: datetime | None,
    conversions: bool,
    output: Path | None,
) -> None:
    """Write the raw clicks of a banner as CSV (needs BANNERTRACK_ADMIN_TOKEN).

    Columns: occurred_at, visitor, user_agent, referrer, bot, bot_reason, repeat. With
    --conversions, the banner's conversions instead. The server streams the rows; nothing
    is held in memory here either.
    """
    params = {k: v.isoformat() for k, v in (("from", start), ("to", end)) if v is not None}
    what = "conversions" if conversions else "clicks"
    path = f"/api/v1/banners/{banner_id}/{what}.csv"
    partial = output.with_name(output.name + ".part") if output is not None else None
    with Remote(url) as remote, remote.stream(path, params=params) as response:
        estimate = int(response.headers.get("x-clicks-estimate", "0")) or None
        sink: IO[bytes] = partial.open("wb") if partial is not None else sys.stdout.buffer
        try:
            rows = _copy(response.iter_bytes(), sink, estimate, what, quiet=output is None)
        except BrokenPipeError:
            if partial is not None:
                raise
            # The reader went away (`bannertrack export ... | head`): that is how a pipe
            # ends, not an error. Point stdout at /dev/null so the interpreter's final
            # flush does not complain again, and stop quietly.
            _silence_stdout()
            return
        except BaseException:
            if partial is not None:
                sink.close()
                partial.unlink(missing_ok=True)  # never leave a half file behind
            raise
        if partial is not None and output is not None:
            sink.close()
            partial.replace(output)
    if output is not None:
        click.echo(f"wrote {rows} {what} to {output}", err=True)


def _copy(
    chunks: Iterator[bytes], sink: IO[bytes], estimate: int | None, what: str, *, quiet: bool
) -> int:
    """Write the CSV through with a progress bar on stderr; returns the rows written."""
    rows = 0
    header = True
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=quiet) as progress:
        task = progress.add_task(f"exporting {what}", total=estimate)
        for chunk in chunks:
            sink.write(chunk)
            lines = chunk.count(b"\n")
            if header and lines:
                lines, header = lines - 1, False
            rows += lines
            progress.update(task, completed=rows)
        progress.update(task, total=rows, completed=rows)
    return rows


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
