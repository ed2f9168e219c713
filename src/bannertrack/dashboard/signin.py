"""``/login`` and ``/logout``: the admin token in, a session cookie out.

The login form carries a CSRF token too (of a session made for it), so no other site can
sign a browser in to an account of its choosing. A wrong token answers 401 with the form
again; ``next`` returns to the page that asked, only ever a path on this site. Wrong
tokens from one client are braked (``login_throttle``): past a few, 429 with Retry-After.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template

from bannertrack.bootstrap.web import Injected, settings_of
from bannertrack.clicks.privacy import IPNetwork
from bannertrack.dashboard.login_throttle import client_key, throttle_of
from bannertrack.dashboard.session import csrf_token, sign_in, sign_out, token_matches
from bannertrack.dashboard.web import HEADERS, checked_form, page_context

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
NextParam = Annotated[str | None, QueryParameter(name="next", max_length=500)]


def safe_next(target: str | None) -> str:
    """Only a path on this site: ``//evil.example`` and ``https://...`` go home."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _form(
    request: Request[Any, Any, Any],
    next_: str,
    error: str | None,
    status: int,
    headers: dict[str, str] | None = None,
) -> Template:
    return Template(
        "login.html.j2",
        context={
            **page_context(request),
            "login_csrf": csrf_token(request),
            "next": next_,
            "error": error,
            "configured": bool(settings_of(request).admin_token),
        },
        headers={**HEADERS, **(headers or {})},
        status_code=status,
    )


@get("/login", include_in_schema=False)
async def login_page(request: Request[Any, Any, Any], next_: NextParam = None) -> Template:
    return _form(request, safe_next(next_), None, 200)


@post("/login", include_in_schema=False, status_code=303)
async def login(
    request: Request[Any, Any, Any],
    trusted_proxies: Injected[tuple[IPNetwork, ...]],
    data: Form,
) -> Template | Redirect:
    checked_form(request, data)
    next_ = safe_next(data.get("next"))
    expected = settings_of(request).admin_token
    if not expected:
        return _form(request, next_, "Sign-in is off: set BANNERTRACK_ADMIN_TOKEN.", 403)
    throttle = throttle_of(request)
    key = await client_key(request, throttle, trusted_proxies)
    wait = throttle.retry_after(key)
    if wait is not None:  # refused whatever the token: a guesser learns nothing
        message = f"Too many wrong tokens from here: try again in {wait} s."
        return _form(request, next_, message, 429, {"Retry-After": str(wait)})
    if not token_matches(data.get("token", ""), expected):
        throttle.failed(key)
        return _form(request, next_, "That is not the admin token.", 401)
    throttle.succeeded(key)
    sign_in(request)
    return Redirect(next_, status_code=303)


@post("/logout", include_in_schema=False, status_code=303)
async def logout(request: Request[Any, Any, Any], data: Form) -> Redirect:
    checked_form(request, data)
    sign_out(request)
    return Redirect("/login", status_code=303)
