"""The outage spool of one process: where its file lives, and its figures.

Only on PostgreSQL, where the database is another machine that can go away while this
instance stays up. On SQLite the database is a file on this instance's own disk: a disk
that cannot take a click batch could not take a spool's either (docs/ingest.md).

The spool's folder is named after the database (a hash of its URL without the
password), so processes of one instance serving two databases, or tests running side by
side, never replay one database's clicks into another.
"""

from __future__ import annotations

import hashlib
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from bannertrack.clicks.replay import SpoolReplay
from bannertrack.clicks.spool import Spool
from bannertrack.config import Settings
from bannertrack.db.repository import SqlRepository
from bannertrack.metrics import Metrics
from bannertrack.models import SpoolStats
from bannertrack.outage import DatabaseState
from bannertrack.repository import ReplayTarget, Repository


def spool_folder(settings: Settings) -> Path:
    url = make_url(settings.database_url).render_as_string(hide_password=True)
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return Path(settings.spool_dir).expanduser() / digest


def wants_spool(settings: Settings, dialect: str) -> bool:
    return settings.spool_enabled and dialect == "postgresql"


def spool_stats(
    spool: Spool | None, replay: SpoolReplay | None, state: DatabaseState
) -> SpoolStats | None:
    if spool is None:
        return None
    return SpoolStats(
        batches=spool.batches,
        clicks=spool.clicks,
        impressions=spool.impressions,
        oldest_age_s=round(spool.oldest_age(), 3),
        bytes=spool.bytes,
        max_bytes=spool.max_bytes,
        spooled_clicks=spool.spooled_clicks,
        replayed_clicks=replay.replayed_clicks if replay is not None else 0,
        rejected_batches=spool.rejected,
        database_down=state.down,
        last_replay_at=(
            datetime.fromtimestamp(replay.last_replay_at, UTC)
            if replay is not None and replay.last_replay_at is not None
            else None
        ),
    )


async def open_spool(
    settings: Settings,
    database: SqlRepository,
    repository: Repository,
    metrics: Metrics,
    state: DatabaseState,
    stack: AsyncExitStack,
) -> tuple[Spool | None, SpoolReplay | None]:
    """The spool and its replay, on PostgreSQL; closed after the writers have stopped."""
    if not wants_spool(settings, database.dialect):
        return None, None
    spool = Spool(spool_folder(settings), max_bytes=settings.spool_max_bytes)
    await spool.open()
    stack.push_async_callback(spool.close)
    # Replayed through the cached repository: a replayed batch invalidates like a live one.
    target = repository if isinstance(repository, ReplayTarget) else database
    replay = SpoolReplay(
        spool,
        target,
        state,
        interval=settings.spool_replay_interval,
        on_replayed=metrics.clicks_replayed.inc,
    )
    await stack.enter_async_context(replay)
    metrics.watch_spool(lambda: spool_stats(spool, replay, state))
    return spool, replay
