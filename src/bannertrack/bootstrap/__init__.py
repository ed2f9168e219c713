"""The one place the service is assembled, for the API, the CLI and the benchmarks.

``open_service(settings)`` builds, starts and (on exit) stops, in reverse order:

    database (SqlRepository; migrations when auto_migrate)
    cache stack: L1 ─ optional Redis L2 tier ─ invalidation bus   (when cache_enabled)
    CachedRepository over the database, with a CachePolicy built from the settings
    CachedPlacements beside it (placements' serve candidates), the serve and its signer
    ClickIngest, ImpressionBatcher, Retention (background writers and cleanup)
    on PostgreSQL, the outage spool and its replay (``_spool.py``)
    VisitorHasher, trusted proxies, Metrics

Each consumer gets the narrow protocol it needs (``bannertrack.repository``), never the
concrete classes: nothing outside this package and ``db/`` names ``SqlRepository``. The
database and its health probe are in ``_database.py``, the cache stack and its topology
check in ``_cache.py``, the spool in ``_spool.py``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bannertrack.bootstrap._cache import (
    CACHED_TYPES,
    build_bus,
    cache_policy,
    check_topology,
    open_cache,
)
from bannertrack.bootstrap._database import DatabaseProbe, open_database
from bannertrack.bootstrap._spool import open_spool, spool_stats
from bannertrack.bootstrap.public_url import PublicUrls
from bannertrack.bootstrap.workers import WorkerBoard, WorkerFigures
from bannertrack.caching.bus import Bus
from bannertrack.caching.placements import CachedPlacements
from bannertrack.clicks import bots
from bannertrack.clicks.impressions import ImpressionBatcher
from bannertrack.clicks.ingest import ClickIngest
from bannertrack.clicks.privacy import IPNetwork, VisitorHasher, parse_networks
from bannertrack.clicks.replay import SpoolReplay
from bannertrack.clicks.retention import Retention
from bannertrack.clicks.salt_key import load_salt_key, sealed_salt_loader
from bannertrack.clicks.signing import ClickSigner
from bannertrack.clicks.spool import Spool
from bannertrack.config import Settings
from bannertrack.db.click_copy import ClickCopy, gap_patience
from bannertrack.db.engine import DbTimeouts, create_engine
from bannertrack.db.explorer import SqlExplorer
from bannertrack.db.probe import WriteProbe
from bannertrack.logs import set_fault_interval
from bannertrack.metrics import Metrics
from bannertrack.models import SpoolStats
from bannertrack.outage import DatabaseState
from bannertrack.placements.caps import DailyCaps
from bannertrack.placements.serve import Server
from bannertrack.repository import (
    CacheAdmin,
    ClickArchive,
    Explorer,
    Housekeeping,
    PlacementStore,
    Repository,
    StorageProbe,
)
from bannertrack.timeutil import utcnow

log = logging.getLogger("bannertrack")
# The filtered figures' copy loads on an engine of its own: two of its reads walk a
# window's index entries, longer than a request's statement may take.
LOAD_TIMEOUTS = DbTimeouts(statement=300.0)

__all__ = [
    "CACHED_TYPES",
    "Service",
    "build_bus",
    "cache_policy",
    "check_topology",
    "open_database",
    "open_service",
]


@dataclass(frozen=True, slots=True)
class Service:
    """A running service: each part typed by what its consumers may do with it."""

    settings: Settings
    repository: Repository  # the cached one when the cache is on
    archive: ClickArchive
    explorer: Explorer
    housekeeping: Housekeeping
    storage: StorageProbe
    cache_admin: CacheAdmin | None  # None when the cache is off
    ingest: ClickIngest
    impressions: ImpressionBatcher
    retention: Retention
    metrics: Metrics
    hasher: VisitorHasher
    trusted_proxies: tuple[IPNetwork, ...]
    public_urls: PublicUrls  # every absolute URL the service writes goes through it
    workers: WorkerBoard | None  # the other workers' figures; None outside `bannertrack api`
    bus: Bus | None  # cross-instance invalidation; None on single-process SQLite
    placements: PlacementStore  # the cached one (serve candidates) when the cache is on
    signer: ClickSigner  # placements' click URLs: signs on a serve, judges on a click
    server: Server  # GET /p/{id}
    database_state: DatabaseState
    spool: Spool | None  # the outage spool (PostgreSQL with spool_enabled)
    replay: SpoolReplay | None

    def spool_stats(self) -> SpoolStats | None:
        return spool_stats(self.spool, self.replay, self.database_state)


async def _start_workers(
    settings: Settings,
    repository: Repository,
    housekeeping: Housekeeping,
    metrics: Metrics,
    stack: AsyncExitStack,
    state: DatabaseState,
    spool: Spool | None,
) -> tuple[ClickIngest, ImpressionBatcher, Retention]:
    """The click writer, the impression batcher and retention, entered on ``stack``: each
    stops (the click queue drains, pending impressions are written) before the database
    closes."""
    # Clicks go through the cached repository: it invalidates once per batch, after the
    # commit and before the batch's clicks are acknowledged.
    ingest = ClickIngest(
        repository,
        on_batch=metrics.on_batch,
        max_batch=settings.ingest_max_batch,
        max_wait=settings.ingest_max_wait,
        max_queue=settings.ingest_max_queue,
        spool=spool,
        state=state,
        spool_after=settings.spool_after,
    )
    impressions = ImpressionBatcher(
        repository,
        interval=settings.impression_flush_interval,
        on_flush=metrics.impressions_recorded.inc,
        spool=spool,
        state=state,
    )
    retention = Retention(
        housekeeping,
        retention_days=settings.retention_days,
        dedup_window=settings.dedup_window,
        interval=settings.retention_interval,
        batch=settings.retention_batch,
    )
    return (
        await stack.enter_async_context(ingest),
        await stack.enter_async_context(impressions),
        await stack.enter_async_context(retention),
    )


def _figures_of(
    cached: CacheAdmin | None, metrics: Metrics, spool: Callable[[], SpoolStats | None]
) -> Callable[[], WorkerFigures]:
    def figures() -> WorkerFigures:
        return WorkerFigures(
            pid=os.getpid(),
            written_at=time.time(),
            cache=cached.stats() if cached is not None else None,
            exposition=metrics.exposition().decode(),
            spool=spool(),
        )

    return figures


@asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[Service]:
    """The running service; leaving the context stops every part in reverse order."""
    salt_key = load_salt_key(settings.salt_key, settings.salt_key_file)
    set_fault_interval(settings.log_fault_interval)
    async with AsyncExitStack() as stack:
        database = await stack.enter_async_context(open_database(settings))
        enabled = settings.cache_enabled
        state = DatabaseState()
        parts = (
            await open_cache(settings, database, database.engine, stack, state) if enabled else None
        )
        cached = parts.cached if parts is not None else None
        bus = parts.bus if parts is not None else None
        tier = parts.tier if parts is not None else None
        repository: Repository = cached if cached is not None else database
        metrics = Metrics(
            cache_stats=cached.stats if cached is not None else lambda: None,
            db_queries=lambda: database.queries.count,
            bus_stats=lambda: bus.stats() if bus is not None else None,
            tier_counters=lambda: tier.counters if tier is not None else None,
        )
        spool, replay = await open_spool(settings, database, repository, metrics, state, stack)
        ingest, impressions, retention = await _start_workers(
            settings, repository, database, metrics, stack, state, spool
        )
        trusted = parse_networks(settings.trusted_proxies)
        workers = None
        if settings.workers_dir:
            # Entered last, so it stops first: no snapshot of a worker that is stopping.
            workers = await stack.enter_async_context(
                WorkerBoard(
                    Path(settings.workers_dir),
                    _figures_of(cached, metrics, lambda: spool_stats(spool, replay, state)),
                )
            )
        placements: PlacementStore = database
        if parts is not None:
            placements = CachedPlacements(
                database,
                parts.cached.cache,
                parts.cached.invalidate,
                settings.cache_ttl_placement,
                serving=parts.cached.serving_read,
            )
        # The day's salt is shared through the database, sealed under a key that is not
        # in it, so every instance keys alike and a copy of the data cannot.
        hasher = VisitorHasher(sealed_salt_loader(database.sealed_salt, salt_key))
        # Derived from the salt key: never in the database, the same on every instance.
        signer = ClickSigner(salt_key.derive(b"click url"), settings.click_url_validity)
        public_urls = PublicUrls(settings.public_url, trusted)
        bots.warm_up()  # compile the crawler patterns now, not on the first click
        copy = None
        if settings.filter_copy_rows:
            copy = ClickCopy(
                database.engine,
                rows=settings.filter_copy_rows,
                retention_days=settings.retention_days,
                gap_patience=gap_patience(settings.db_timeout),
                load_engine=lambda: create_engine(
                    settings.database_url, pool_size=1, timeouts=LOAD_TIMEOUTS
                ),
            )
            await stack.enter_async_context(copy)  # stops a load still running
            metrics.watch_copy(copy.stats)
        log.info(
            "bannertrack ready: database=%s cache=%s bus=%s",
            database.dialect,
            "on" if cached else "off",
            bus.kind if bus is not None else "none",
        )
        yield Service(
            settings=settings,
            repository=repository,
            archive=database,
            explorer=SqlExplorer(
                database.engine,
                retention_days=settings.retention_days,
                clock=utcnow,
                copy=copy,
            ),
            housekeeping=database,
            storage=DatabaseProbe(
                database, WriteProbe(database.engine, settings.health_probe_interval)
            ),
            cache_admin=cached,
            ingest=ingest,
            impressions=impressions,
            retention=retention,
            metrics=metrics,
            hasher=hasher,
            trusted_proxies=trusted,
            public_urls=public_urls,
            workers=workers,
            bus=bus,
            database_state=state,
            spool=spool,
            replay=replay,
            placements=placements,
            signer=signer,
            server=Server(
                candidates=placements.candidates,
                impressions=impressions,
                hasher=hasher,
                signer=signer,
                trusted_proxies=trusted,
                caps=DailyCaps(settings.placement_cap_entries),
            ),
        )
