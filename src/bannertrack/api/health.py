"""``GET /healthz`` (liveness and readiness) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, get
from litestar.openapi import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST

from bannertrack.bootstrap.web import Injected
from bannertrack.caching.bus import Bus
from bannertrack.clicks.ingest import ClickIngest
from bannertrack.errors import UnavailableError
from bannertrack.metrics import Metrics, merged_exposition
from bannertrack.repository import StorageProbe
from bannertrack.workers import WorkerBoard


@get(
    "/healthz",
    tags=["operations"],
    responses={
        503: ResponseSpec(
            dict[str, Any],
            description="Not ready: the database cannot read or write (same body).",
            generate_examples=False,
        )
    },
)
async def healthz(
    storage: Injected[StorageProbe], ingest: Injected[ClickIngest], bus: Injected[Bus | None]
) -> Response[dict[str, Any]]:
    checks: dict[str, Any] = {}
    try:
        await storage.ping()
        checks["database"] = {"status": "ok", "dialect": storage.dialect}
    except UnavailableError as exc:
        checks["database"] = {"status": "down", "error": str(exc)}
    # A database that answers reads may still refuse every write (full disk, read-only
    # file): the probe writes, and the click writer reports its own latest outage.
    write_error = await storage.write_error()
    if write_error is not None:
        checks["database"] = {**checks["database"], "status": "down", "write_error": write_error}
    checks["ingest"] = {
        "status": "failing" if ingest.failing else "ok",
        "queued": ingest.queued,
        "max_queue": ingest.max_queue,
        "batches_written": ingest.batches_written,
        "clicks_written": ingest.clicks_written,
        "batches_failed": ingest.batches_failed,
        "clicks_failed": ingest.clicks_failed,
        **({"last_error": ingest.last_outage_error} if ingest.failing else {}),
    }
    if bus is not None:
        # A bus outage degrades consistency across instances, not this instance's answers:
        # reported, but the instance stays ready (it serves from L1 with short TTLs).
        stats = msgspec.to_builtins(bus.stats())
        checks["bus"] = {"status": "ok" if bus.connected else "degraded", **stats}
    healthy = all(c["status"] == "ok" for c in checks.values() if c["status"] != "degraded")
    degraded = any(c["status"] != "ok" for c in checks.values())
    body = {"status": "ok" if not degraded else "degraded", "checks": checks}
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
