"""``GET /healthz`` (liveness and readiness) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

from typing import Literal

import msgspec
from litestar import Response, get
from litestar.openapi import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST

from bannertrack.bootstrap.web import Injected
from bannertrack.caching.bus import Bus
from bannertrack.clicks.ingest import ClickIngest
from bannertrack.errors import UnavailableError
from bannertrack.metrics import Metrics, merged_exposition
from bannertrack.models import BusStats
from bannertrack.repository import StorageProbe
from bannertrack.workers import WorkerBoard


class DatabaseCheck(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["ok", "down"]
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
    last_error: str | None  # the current outage's error; null unless failing


class BusCheck(BusStats, frozen=True, kw_only=True):
    """The invalidation bus; "degraded" while it is disconnected (still ready)."""

    status: Literal["ok", "degraded"]


class HealthChecks(msgspec.Struct, frozen=True, kw_only=True):
    database: DatabaseCheck
    ingest: IngestCheck
    bus: BusCheck | None  # null when the instance has no bus (one process on SQLite)


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
    storage: Injected[StorageProbe], ingest: Injected[ClickIngest], bus: Injected[Bus | None]
) -> Response[Health]:
    read_error: str | None = None
    try:
        await storage.ping()
    except UnavailableError as exc:
        read_error = str(exc)
    # A database that answers reads may still refuse every write (full disk, read-only
    # file): the probe writes, and the click writer reports its own latest outage.
    write_error = await storage.write_error()
    database = DatabaseCheck(
        status="ok" if read_error is None and write_error is None else "down",
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
        last_error=ingest.last_outage_error if ingest.failing else None,
    )
    bus_check = None
    if bus is not None:
        # A bus outage degrades consistency across instances, not this instance's answers:
        # reported, but the instance stays ready (it serves from L1 with short TTLs).
        bus_check = BusCheck(
            status="ok" if bus.connected else "degraded", **msgspec.structs.asdict(bus.stats())
        )
    healthy = database.status == "ok" and ingest_check.status == "ok"
    degraded = not healthy or (bus_check is not None and bus_check.status != "ok")
    body = Health(
        status="degraded" if degraded else "ok",
        checks=HealthChecks(database=database, ingest=ingest_check, bus=bus_check),
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
