"""``/ops``: the cache panel, the health of this worker and every worker's outage spool
(``spool_panel``), for a signed-in admin.

The cache actions are forms posting to ``/ops/cache/*`` with the session's CSRF token;
they call the same ``CacheAdmin`` the ``/api/v1/cache/*`` endpoints call, so the admin
token never reaches the page. The panel refreshes itself from ``/ops/cache`` (a fragment,
no queries) while the tab is visible.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter, QueryParameter
from litestar.response import Redirect, Template

from bannertrack.bootstrap.web import Injected
from bannertrack.bootstrap.workers import WorkerBoard
from bannertrack.caching.bus import Bus
from bannertrack.clicks.ingest import ClickIngest
from bannertrack.dashboard.cache_history import CacheHistory
from bannertrack.dashboard.cache_panel import cache_panel
from bannertrack.dashboard.session import admin_session_guard
from bannertrack.dashboard.spool_panel import SpoolStatsOf, spool_rows
from bannertrack.dashboard.web import HEADERS, checked_form, page_context
from bannertrack.errors import InvalidInputError, UnavailableError
from bannertrack.repository import CacheAdmin, StorageProbe
from bannertrack.timeutil import utcnow

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
Done = Annotated[str | None, QueryParameter(name="done", max_length=200)]


def _history(state: State) -> CacheHistory:
    history: CacheHistory = state.cache_history
    return history


def cache_context(state: State, cache_admin: CacheAdmin | None) -> dict[str, Any]:
    stats = cache_admin.stats() if cache_admin is not None else None
    return {"cache": cache_panel(stats, _history(state))}


async def _health(
    storage: StorageProbe, ingest: ClickIngest, bus: Bus | None, known_down: bool
) -> list[tuple[str, str, str]]:
    """(part, status, detail) rows, the same checks ``/healthz`` runs."""
    rows = []
    if known_down:  # as /healthz: no ping to wait for while the spool takes the clicks
        db = ("degraded", "unavailable; clicks go to the outage spool")
    else:
        try:
            await storage.ping()
            write_error = await storage.write_error()
            db = ("down", write_error) if write_error else ("ok", f"{storage.dialect} answers")
        except UnavailableError as exc:
            db = ("down", str(exc))
    rows.append(("Database", *db))
    rows.append(
        (
            "Click writer",
            "failing" if ingest.failing else "ok",
            f"{ingest.queued:,} queued of {ingest.max_queue:,}; "
            f"{ingest.clicks_written:,} clicks in {ingest.batches_written:,} batches; "
            f"{ingest.clicks_failed:,} failed",
        )
    )
    if bus is not None:
        rows.append(
            ("Invalidation bus", "ok" if bus.connected else "degraded", f"{bus.kind} transport")
        )
    return rows


@get("/ops", guards=[admin_session_guard], include_in_schema=False)
async def ops_page(
    request: Request[Any, Any, Any],
    state: State,
    cache_admin: Injected[CacheAdmin | None],
    storage: Injected[StorageProbe],
    ingest: Injected[ClickIngest],
    bus: Injected[Bus | None],
    spool_stats: Injected[SpoolStatsOf],
    workers: Injected[WorkerBoard | None],
    done: Done = None,
) -> Template:
    own = spool_stats()
    others = await workers.others() if workers is not None else []
    pid = workers.pid if workers is not None else os.getpid()
    return Template(
        "ops.html.j2",
        context={
            **page_context(request),
            **cache_context(state, cache_admin),
            "health": await _health(storage, ingest, bus, own is not None and own.database_down),
            "spool_rows": spool_rows(pid, own, others, utcnow()),
            "spool_off": (
                ""
                if own is not None
                else "On SQLite there is no spool: the database is this host's own file."
                if storage.dialect == "sqlite"
                else "The outage spool is turned off (BANNERTRACK_SPOOL_ENABLED): "
                "clicks get 503 while the database is down."
            ),
            "done": done,
        },
        headers=HEADERS,
    )


@get("/ops/cache", guards=[admin_session_guard], include_in_schema=False)
async def cache_fragment(
    request: Request[Any, Any, Any], state: State, cache_admin: Injected[CacheAdmin | None]
) -> Template:
    """The cache panel alone: the page's script refreshes the panel from it (no queries)."""
    return Template(
        "_cache_panel.html.j2",
        context={**page_context(request), **cache_context(state, cache_admin)},
        headers=HEADERS,
    )


@post("/ops/cache/{action:str}", guards=[admin_session_guard], include_in_schema=False)
async def cache_action(
    request: Request[Any, Any, Any],
    cache_admin: Injected[CacheAdmin | None],
    action: Annotated[str, PathParameter(max_length=16)],
    data: Form,
) -> Redirect:
    checked_form(request, data)
    if cache_admin is None:
        raise InvalidInputError("the cache is switched off")
    if action == "clear":
        done = f"Cleared {await cache_admin.clear():,} entries."
    elif action == "warm":
        done = f"Warmed: {await cache_admin.warm():,} entries loaded."
    elif action == "namespace":
        name = data.get("namespace", "")
        done = f"Invalidated {name}: {await cache_admin.invalidate_namespace(name):,} dropped."
    elif action == "banner":
        raw = data.get("banner_id", "").strip()
        if not raw.isdigit() or len(raw) > 18 or int(raw) < 1:
            raise InvalidInputError("a banner id is a positive whole number")
        removed = await cache_admin.invalidate_banner(int(raw))
        done = f"Invalidated banner {raw}: {removed:,} dropped."
    else:
        raise InvalidInputError(f"no cache action {action!r}")
    return Redirect("/ops", query_params={"done": done}, status_code=303)
