"""A consistent copy of a SQLite database while the server keeps writing to it.

SQLite's online backup API copies the database page by page through a connection of its
own. It is done here in ONE step (``pages=-1``): a backup made in several steps starts
over whenever another connection writes between two steps, and under a steady stream of
clicks it might never finish. One step is one read transaction, and the database is in
WAL mode (``db/engine.py``), so the server's writers go on meanwhile and the copy is the
database as of the moment the step began: every click committed before that is in it,
none committed after. The copy is written beside the destination and renamed into place
only after ``PRAGMA quick_check`` passed, so a half-written file never bears its name.

PostgreSQL has its own tools (``pg_dump``, base backups); ``backup_sqlite`` refuses it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from bannertrack.db.urls import async_url
from bannertrack.errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    bytes: int
    banners: int
    clicks: int


def sqlite_path(database_url: str) -> Path:
    """The file of a ``sqlite:///`` URL; a PostgreSQL or in-memory URL is refused."""
    url = async_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise InvalidInputError(
            "bannertrack backup copies a SQLite database; back PostgreSQL up with pg_dump "
            "or a base backup (docs/deployment.md)"
        )
    if not url.database or url.database == ":memory:":
        raise InvalidInputError("an in-memory SQLite database has no file to back up")
    return Path(url.database)


def backup_sqlite(source: Path, destination: Path, *, overwrite: bool = False) -> BackupResult:
    """Copy ``source`` to ``destination`` consistently; blocking (run it off any loop)."""
    if not source.is_file():
        raise InvalidInputError(f"no SQLite database at {source}")
    if destination.exists() and not overwrite:
        raise InvalidInputError(f"{destination} exists; choose another name or --force")
    if destination.resolve() == source.resolve():
        raise InvalidInputError("the backup cannot be the database itself")
    partial = destination.with_name(f".{destination.name}.partial")
    partial.unlink(missing_ok=True)
    # mode=ro: the backup never writes to the live database, whatever goes wrong.
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst, pages=-1)
            # A copy that opens on its own: no WAL left beside it.
            dst.execute("PRAGMA journal_mode=DELETE")
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
            banners = dst.execute("SELECT count(*) FROM banners").fetchone()[0]
            clicks = dst.execute("SELECT count(*) FROM clicks").fetchone()[0]
        finally:
            dst.close()
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    finally:
        src.close()
    if check != "ok":
        partial.unlink(missing_ok=True)
        raise InvalidInputError(f"the copy failed its integrity check: {check}")
    os.replace(partial, destination)
    return BackupResult(destination, destination.stat().st_size, int(banners), int(clicks))
