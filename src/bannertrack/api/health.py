"""``GET /healthz`` (liveness and readiness) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import msgspec
from litestar import Response, get
from litestar.openapi import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST

from bannertrack.bootstrap.web import Injected
from bannertrack.bootstrap.workers import WorkerBoard
from bannertrack.caching.bus import Bus
from bannertrack.clicks.ingest import ClickIngest
from bannertrack.errors import UnavailableError
from bannertrack.metrics import Metrics, merged_exposition
from bannertrack.models import BusStats, SpoolStats
from bannertrack.repository import StorageProbe

SpoolStatsOf = Callable[[], SpoolStats | None]


class DatabaseCheck(msgspec.Struct, frozen=True, kw_only=True):
    # "degraded": down, but the outage spool takes the clicks (the instance stays ready)
    status: Literal["ok", "down", "degraded"]
    dialect: str
    error: str | None  # why a read failed; null when reads work
    write_error: str | None  # why the latest write failed; null when writes work


class IngestCheck(msgspec.Struct, frozen=True, kw_only=True):
    """The click writer: its queue and what it has written or failed to write."""

    status: Literal["ok", "failing"]
    queued: int
    max_queue: int
    batches_written: int
    clicks_written: int
    batches_failed: int
    clicks_failed: int
    batches_retried: int  # written again after the database cancelled them (a deadlock)
    last_error: str | None  # the current outage's error; null unless failing


class BusCheck(BusStats, frozen=True, kw_only=True):
    """The invalidation bus; "degraded" while it is disconnected (still ready)."""

    status: Literal["ok", "degraded"]


class SpoolCheck(SpoolStats, frozen=True, kw_only=True):
    """The outage spool of this process: "degraded" while it holds batches, "full" when
    it cannot take another (clicks then get 503)."""

    status: Literal["ok", "degraded", "full"]


class HealthChecks(msgspec.Struct, frozen=True, kw_only=True):
    database: DatabaseCheck
    ingest: IngestCheck
    bus: BusCheck | None  # null when the instance has no bus (one process on SQLite)
    spool: SpoolCheck | None  # null without a spool (SQLite, or turned off)


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """``ok``, or ``degraded`` when any check is not ok (the status code says if the
    instance is still ready: 200, or 503 when the database or the click writer fail)."""

    status: Literal["ok", "degraded"]
    checks: HealthChecks


@get(
    "/healthz",
    tags=["operations"],
    responses={
        503: ResponseSpec(
            Health,
            description="Not ready: the database cannot read or write (same body).",
            generate_examples=False,
        )
    },
)
async def healthz(
    storage: Injected[StorageProbe],
    ingest: Injected[ClickIngest],
    bus: Injected[Bus | None],
    spool_stats: Injected[SpoolStatsOf],
) -> Response[Health]:
    spool = spool_stats()
    read_error: str | None = None
    write_error: str | None = None
    if spool is not None and spool.database_down:
        # Known down: no ping to wait for (a frozen database would hold this request).
        read_error = "database unavailable"
    else:
        try:
            await storage.ping()
        except UnavailableError as exc:
            read_error = str(exc)
        # A database that answers reads may still refuse every write (full disk, read-only
        # file): the probe writes, and the click writer reports its own latest outage.
        write_error = await storage.write_error()
    spool_check = None
    if spool is not None:
        full = spool.bytes >= spool.max_bytes * 0.99
        spool_check = SpoolCheck(
            status="full" if full else "degraded" if spool.batches else "ok",
            **msgspec.structs.asdict(spool),
        )
    down = read_error is not None or write_error is not None
    database = DatabaseCheck(
        # Visitors are still served (links from the cache, clicks into the spool): the
        # instance is degraded, not out of service, unless the spool is full too.
        status=(
            "ok"
            if not down
            else "degraded"
            if spool_check and spool_check.status != "full"
            else "down"
        ),
        dialect=storage.dialect,
        error=read_error,
        write_error=write_error,
    )
    ingest_check = IngestCheck(
        status="failing" if ingest.failing else "ok",
        queued=ingest.queued,
        max_queue=ingest.max_queue,
        batches_written=ingest.batches_written,
        clicks_written=ingest.clicks_written,
        batches_failed=ingest.batches_failed,
        clicks_failed=ingest.clicks_failed,
        batches_retried=ingest.batches_retried,
        last_error=ingest.last_outage_error if ingest.failing else None,
    )
    bus_check = None
    if bus is not None:
        # A bus outage degrades consistency across instances, not this instance's answers:
        # reported, but the instance stays ready (it serves from L1 with short TTLs).
        bus_check = BusCheck(
            status="ok" if bus.connected else "degraded", **msgspec.structs.asdict(bus.stats())
        )
    healthy = database.status != "down" and ingest_check.status == "ok"
    degraded = (
        not healthy
        or database.status != "ok"
        or (bus_check is not None and bus_check.status != "ok")
        or (spool_check is not None and spool_check.status != "ok")
    )
    body = Health(
        status="degraded" if degraded else "ok",
        checks=HealthChecks(
            database=database, ingest=ingest_check, bus=bus_check, spool=spool_check
        ),
    )
    headers = None if healthy else {"Retry-After": "5"}
    return Response(body, status_code=200 if healthy else 503, headers=headers)


# Litestar appends the charset itself.
@get("/metrics", tags=["operations"], media_type=CONTENT_TYPE_LATEST.split("; charset")[0])
async def metrics(metrics: Injected[Metrics], workers: Injected[WorkerBoard | None]) -> bytes:
    """Every worker's series, labelled by pid, when the server runs several (or one) worker
    processes under ``bannertrack api``; this process's alone in an app built without."""
    if workers is None:
        return metrics.exposition()
    others = await workers.others()
    return merged_exposition(metrics, workers.pid, [(f.pid, f.exposition) for f in others])
