"""``/placements``: every placement; one placement's banners, the share each weight gives
and the snippets that embed it; create, edit and delete; link banners with weights.

The forms post here with the session's CSRF token and call the ``PlacementStore`` the
placement API calls (the cached one, so a serve sees the change as it would after the
API's), with the API's checks and messages (``placement_forms``). A refused form is shown
again with each message beside its field and the status 400.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template

from bannertrack.bootstrap.public_url import PublicUrls
from bannertrack.bootstrap.web import MAX_OFFSET, Injected, PlacementId
from bannertrack.dashboard.placement_forms import (
    parse_placement,
    parse_weights,
    placement_values,
    weights_error,
)
from bannertrack.dashboard.placement_views import LinkRow, banner_status, shares, snippets
from bannertrack.dashboard.session import admin_session_guard
from bannertrack.dashboard.web import HEADERS, checked_form, page_context, read_guard
from bannertrack.errors import InvalidInputError, NotFoundError
from bannertrack.models import Placement, PlacementCreate, PlacementUpdate
from bannertrack.repository import PlacementStore, Repository
from bannertrack.timeutil import utcnow

PAGE_SIZE = 50
SERVED_DAYS = 7  # the weights' outcome shown beside them, from the placement's rollup
CHOICES = 500  # banners offered in the "link a banner" list (newest first); any id works
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
PageParam = Annotated[int, QueryParameter(name="page", ge=1, le=MAX_OFFSET // PAGE_SIZE)]
Done = Annotated[str | None, QueryParameter(name="done", max_length=200)]


@get("/placements", guards=[read_guard], include_in_schema=False)
async def placement_list(
    request: Request[Any, Any, Any],
    placements: Injected[PlacementStore],
    page: PageParam = 1,
    done: Done = None,
) -> Template:
    found = await placements.list_placements((page - 1) * PAGE_SIZE, PAGE_SIZE)
    counts = {}
    for placement in found.items:  # a page holds at most PAGE_SIZE: as many small reads
        linked = await placements.placement_banners(placement.id)
        counts[placement.id] = len(linked.banners) if linked is not None else 0
    return Template(
        "placements.html.j2",
        context={
            **page_context(request),
            "items": found.items,
            "counts": counts,
            "total": found.total,
            "page": page,
            "pages": max(1, -(-found.total // PAGE_SIZE)),
            "done": done,
        },
        headers=HEADERS,
    )


async def _placement(placements: PlacementStore, placement_id: int) -> Placement:
    found = await placements.get_placement(placement_id)
    if found is None:
        raise NotFoundError(f"placement {placement_id} not found")
    return found


async def _detail(
    request: Request[Any, Any, Any],
    repository: Repository,
    placements: PlacementStore,
    public_urls: PublicUrls,
    placement: Placement,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    done: str | None = None,
) -> Template:
    listed = await placements.placement_banners(placement.id)
    if listed is None:
        raise NotFoundError(f"placement {placement.id} not found")
    now = utcnow()
    stats = await placements.placement_stats(placement.id, now - timedelta(days=SERVED_DAYS), now)
    served = {b.banner_id: b.impressions for b in stats.banners} if stats is not None else {}
    total_served = stats.impressions if stats is not None else 0
    rows = []
    for link, share in zip(listed.banners, shares(listed.banners), strict=True):
        banner = await repository.get_banner(link.banner_id)
        n = served.get(link.banner_id, 0)
        rows.append(
            LinkRow(
                banner_id=link.banner_id,
                banner=banner,
                status=banner_status(banner, now),
                weight=link.weight,
                share=share,
                served=n,
                served_share=n / total_served if total_served else None,
            )
        )
    linked = {row.banner_id for row in rows}
    choices = []
    if page_context(request)["signed_in"]:
        newest = await repository.list_banners(0, CHOICES)
        choices = sorted(
            (b for b in newest.items if b.id not in linked), key=lambda b: b.id, reverse=True
        )
    return Template(
        "placement.html.j2",
        context={
            **page_context(request),
            "placement": placement,
            "rows": rows,
            "stats": stats,
            "served_days": SERVED_DAYS,
            "choices": choices,
            "values": values or {},
            "errors": errors or {},
            "snippets": snippets(public_urls.base(request.scope), placement),
            "done": done,
        },
        headers=HEADERS,
        status_code=400 if errors else 200,
    )


@get("/placements/{placement_id:int}", guards=[read_guard], include_in_schema=False)
async def placement_page(
    request: Request[Any, Any, Any],
    repository: Injected[Repository],
    placements: Injected[PlacementStore],
    public_urls: Injected[PublicUrls],
    placement_id: PlacementId,
    done: Done = None,
) -> Template:
    placement = await _placement(placements, placement_id)
    return await _detail(request, repository, placements, public_urls, placement, done=done)


@post(
    "/placements/{placement_id:int}/banners",
    guards=[admin_session_guard],
    include_in_schema=False,
    status_code=303,
)
async def set_weights(
    request: Request[Any, Any, Any],
    repository: Injected[Repository],
    placements: Injected[PlacementStore],
    public_urls: Injected[PublicUrls],
    placement_id: PlacementId,
    data: Form,
) -> Template | Redirect:
    checked_form(request, data)
    placement = await _placement(placements, placement_id)
    listed = await placements.placement_banners(placement_id)
    if listed is None:
        raise NotFoundError(f"placement {placement_id} not found")
    parsed, errors = parse_weights(data, listed.banners)
    if parsed is not None:
        try:
            saved = await placements.set_placement_banners(placement_id, parsed.links)
        except InvalidInputError as exc:
            errors = weights_error(str(exc))
        else:
            if saved is None:
                raise NotFoundError(f"placement {placement_id} not found")
            done = f"Saved: {len(saved.banners)} banner{'' if len(saved.banners) == 1 else 's'}."
            return Redirect(
                f"/placements/{placement_id}", query_params={"done": done}, status_code=303
            )
    return await _detail(
        request, repository, placements, public_urls, placement, values=data, errors=errors
    )


def _form_page(
    request: Request[Any, Any, Any],
    placement: Placement | None,
    values: dict[str, str],
    errors: dict[str, str],
) -> Template:
    return Template(
        "placement_form.html.j2",
        context={
            **page_context(request),
            "placement": placement,
            "values": values,
            "errors": errors,
        },
        headers=HEADERS,
        status_code=400 if errors else 200,
    )


@get("/placements/new", guards=[admin_session_guard], include_in_schema=False)
async def new_placement_form(request: Request[Any, Any, Any]) -> Template:
    return _form_page(request, None, placement_values(None), {})


@post("/placements/new", guards=[admin_session_guard], include_in_schema=False, status_code=303)
async def create_placement(
    request: Request[Any, Any, Any], placements: Injected[PlacementStore], data: Form
) -> Template | Redirect:
    checked_form(request, data)
    parsed, errors = parse_placement(data, PlacementCreate)
    if parsed is not None:
        made = await placements.create_placement(parsed)
        done = f"Created placement {made.id}, {made.name}. Link banners to it below."
        return Redirect(f"/placements/{made.id}", query_params={"done": done}, status_code=303)
    return _form_page(request, None, data, errors)


@get("/placements/{placement_id:int}/edit", guards=[admin_session_guard], include_in_schema=False)
async def edit_placement_form(
    request: Request[Any, Any, Any], placements: Injected[PlacementStore], placement_id: PlacementId
) -> Template:
    placement = await _placement(placements, placement_id)
    return _form_page(request, placement, placement_values(placement), {})


@post(
    "/placements/{placement_id:int}/edit",
    guards=[admin_session_guard],
    include_in_schema=False,
    status_code=303,
)
async def update_placement(
    request: Request[Any, Any, Any],
    placements: Injected[PlacementStore],
    placement_id: PlacementId,
    data: Form,
) -> Template | Redirect:
    checked_form(request, data)
    placement = await _placement(placements, placement_id)
    parsed, errors = parse_placement(data, PlacementUpdate)
    if parsed is not None:
        updated = await placements.update_placement(placement_id, parsed)
        if updated is None:
            raise NotFoundError(f"placement {placement_id} not found")
        done = f"Saved placement {updated.id}, {updated.name}."
        return Redirect(f"/placements/{updated.id}", query_params={"done": done}, status_code=303)
    return _form_page(request, placement, data, errors)


@post(
    "/placements/{placement_id:int}/delete",
    guards=[admin_session_guard],
    include_in_schema=False,
    status_code=303,
)
async def delete_placement(
    request: Request[Any, Any, Any],
    placements: Injected[PlacementStore],
    placement_id: PlacementId,
    data: Form,
) -> Template | Redirect:
    checked_form(request, data)
    placement = await _placement(placements, placement_id)
    if data.get("confirm") != "yes":
        return _form_page(
            request,
            placement,
            placement_values(placement),
            {"confirm": "Tick the box to confirm: the placement and its counts are deleted."},
        )
    if not await placements.delete_placement(placement_id):
        raise NotFoundError(f"placement {placement_id} not found")
    done = f"Deleted placement {placement_id}, {placement.name}."
    return Redirect("/placements", query_params={"done": done}, status_code=303)
