"""``/banners``: every banner with search, status, sort and paging; create, edit, pause,
resume and delete.

The list reads ``Explorer.banner_table`` (one row per banner, its running totals joined).
The forms post here, with the session's CSRF token, and call the ``Repository`` the API
calls (so the cache is invalidated the same way); a refused form is shown again with each
message beside its field and the status 400.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template

from bannertrack.bootstrap.web import BannerId, Injected
from bannertrack.dashboard.banner_forms import domain_error, form_fields, parse, values_of
from bannertrack.dashboard.session import admin_session_guard
from bannertrack.dashboard.web import HEADERS, checked_form, page_context, read_guard
from bannertrack.errors import InvalidInputError, NotFoundError
from bannertrack.models import Banner, BannerCreate, BannerUpdate
from bannertrack.models.explore import BANNER_SORTS, BANNER_STATUSES, BannerSort, BannerStatus
from bannertrack.repository import Explorer, Repository

PAGE_SIZE = 25
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
Search = Annotated[str | None, QueryParameter(name="q", max_length=200)]
StatusParam = Annotated[str | None, QueryParameter(name="status", max_length=16)]
SortParam = Annotated[str | None, QueryParameter(name="sort", max_length=16)]
PageParam = Annotated[int, QueryParameter(name="page", ge=1, le=1_000_000)]
Done = Annotated[str | None, QueryParameter(name="done", max_length=200)]


@get("/banners", guards=[read_guard], include_in_schema=False)
async def banner_list(
    request: Request[Any, Any, Any],
    explorer: Injected[Explorer],
    q: Search = None,
    status: StatusParam = None,
    sort: SortParam = None,
    page: PageParam = 1,
    done: Done = None,
) -> Template:
    search = (q or "").strip()
    chosen_status: BannerStatus | None = next((s for s in BANNER_STATUSES if s == status), None)
    chosen_sort: BannerSort = next((s for s in BANNER_SORTS if s == sort), "clicks")
    table = await explorer.banner_table(
        search, chosen_status, chosen_sort, (page - 1) * PAGE_SIZE, PAGE_SIZE
    )
    pages = max(1, -(-table.total // PAGE_SIZE))
    return Template(
        "banners.html.j2",
        context={
            **page_context(request),
            "table": table,
            "q": search,
            "status": chosen_status or "",
            "sort": chosen_sort,
            "sorts": BANNER_SORTS,
            "statuses": BANNER_STATUSES,
            "page": page,
            "pages": pages,
            "done": done,
        },
        headers=HEADERS,
    )


def _form_page(
    request: Request[Any, Any, Any],
    banner: Banner | None,
    values: dict[str, str | bool],
    errors: dict[str, str],
) -> Template:
    return Template(
        "banner_form.html.j2",
        context={
            **page_context(request),
            "banner": banner,
            "fields": form_fields(),
            "values": values,
            "errors": errors,
        },
        headers=HEADERS,
        status_code=400 if errors else 200,
    )


def _submitted(form: dict[str, str]) -> dict[str, str | bool]:
    shown: dict[str, str | bool] = {}
    for field in form_fields():
        raw = form.get(field.name, "")
        shown[field.name] = bool(raw) if field.kind == "checkbox" else raw
    return shown


@get("/banners/new", guards=[admin_session_guard], include_in_schema=False)
async def new_banner_form(request: Request[Any, Any, Any]) -> Template:
    return _form_page(request, None, values_of(None), {})


@post("/banners/new", guards=[admin_session_guard], include_in_schema=False, status_code=303)
async def create_banner(
    request: Request[Any, Any, Any], repository: Injected[Repository], data: Form
) -> Template | Redirect:
    checked_form(request, data)
    parsed, errors = parse(data, BannerCreate)
    if parsed is not None:
        try:
            banner = await repository.create_banner(parsed)
        except InvalidInputError as exc:
            errors = domain_error(exc)
        else:
            done = f"Created banner {banner.id}, {banner.name}."
            return Redirect(
                "/banners", query_params={"done": done, "sort": "created"}, status_code=303
            )
    return _form_page(request, None, _submitted(data), errors)


async def _banner(repository: Repository, banner_id: int) -> Banner:
    banner = await repository.get_banner(banner_id)
    if banner is None:
        raise NotFoundError(f"banner {banner_id} not found")
    return banner


@get("/banners/{banner_id:int}/edit", guards=[admin_session_guard], include_in_schema=False)
async def edit_banner_form(
    request: Request[Any, Any, Any], repository: Injected[Repository], banner_id: BannerId
) -> Template:
    banner = await _banner(repository, banner_id)
    return _form_page(request, banner, values_of(banner), {})


@post(
    "/banners/{banner_id:int}/edit",
    guards=[admin_session_guard],
    include_in_schema=False,
    status_code=303,
)
async def update_banner(
    request: Request[Any, Any, Any],
    repository: Injected[Repository],
    banner_id: BannerId,
    data: Form,
) -> Template | Redirect:
    checked_form(request, data)
    banner = await _banner(repository, banner_id)
    parsed, errors = parse(data, BannerUpdate)
    if parsed is not None:
        try:
            updated = await repository.update_banner(banner_id, parsed)
        except InvalidInputError as exc:
            errors = domain_error(exc)
        else:
            if updated is None:
                raise NotFoundError(f"banner {banner_id} not found")
            done = f"Saved banner {updated.id}, {updated.name}."
            return Redirect("/banners", query_params={"done": done}, status_code=303)
    return _form_page(request, banner, _submitted(data), errors)


@post(
    "/banners/{banner_id:int}/status",
    guards=[admin_session_guard],
    include_in_schema=False,
    status_code=303,
)
async def set_status(
    request: Request[Any, Any, Any],
    repository: Injected[Repository],
    banner_id: BannerId,
    data: Form,
) -> Redirect:
    """Pause (``active=0``) or resume (``active=1``); back to the list the form was on."""
    checked_form(request, data)
    active = data.get("active") == "1"
    updated = await repository.update_banner(banner_id, BannerUpdate(active=active))
    if updated is None:
        raise NotFoundError(f"banner {banner_id} not found")
    back = data.get("back", "")
    target = back if back.startswith("/banners") and "//" not in back else "/banners"
    done = f"{'Resumed' if active else 'Paused'} banner {updated.id}, {updated.name}."
    return Redirect(target, query_params={"done": done}, status_code=303)


@post(
    "/banners/{banner_id:int}/delete",
    guards=[admin_session_guard],
    include_in_schema=False,
    status_code=303,
)
async def delete_banner(
    request: Request[Any, Any, Any],
    repository: Injected[Repository],
    banner_id: BannerId,
    data: Form,
) -> Template | Redirect:
    checked_form(request, data)
    banner = await _banner(repository, banner_id)
    if data.get("confirm") != "yes":
        return _form_page(
            request,
            banner,
            values_of(banner),
            {"confirm": "Tick the box to confirm: the banner and its clicks are deleted."},
        )
    if not await repository.delete_banner(banner_id):
        raise NotFoundError(f"banner {banner_id} not found")
    done = f"Deleted banner {banner_id}."
    return Redirect("/banners", query_params={"done": done}, status_code=303)
