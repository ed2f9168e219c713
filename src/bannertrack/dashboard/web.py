"""What every dashboard page shares: headers, the read guard, parameters, the page frame.

Reads are open unless ``BANNERTRACK_DASHBOARD_TOKEN`` is set; then a page asks for it with
HTTP Basic authentication (any user name, the token as password), which every browser can
answer without a script, or takes it as a bearer token; a signed-in admin session
(``session``) may read too. Changes need the admin session and its CSRF token.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from pathlib import Path
from typing import Annotated, Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import QueryParameter

from bannertrack.bootstrap.web import settings_of
from bannertrack.dashboard.session import csrf_ok, csrf_token, is_admin, refuse_csrf

HERE = Path(__file__).parent
# Everything the page loads comes from this service; no inline script or style.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

RangeParam = Annotated[str | None, QueryParameter(name="range", max_length=16)]
FromDay = Annotated[str | None, QueryParameter(name="from", max_length=10)]
ToDay = Annotated[str | None, QueryParameter(name="to", max_length=10)]


def _given_token(header: str) -> str:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return ""


async def read_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    expected = settings_of(connection).dashboard_token
    if not expected or is_admin(connection):
        return
    given = _given_token(connection.headers.get("authorization", ""))
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise NotAuthorizedException(
            "the dashboard needs BANNERTRACK_DASHBOARD_TOKEN (as the password)",
            headers={"WWW-Authenticate": 'Basic realm="bannertrack dashboard", charset="UTF-8"'},
        )


def page_context(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """What every page's frame needs: who is signed in, and the CSRF token of its forms."""
    admin = is_admin(request)
    return {
        "signed_in": admin,
        "csrf": csrf_token(request) if admin else "",
        "current": request.url.path,
    }


def checked_form(request: Request[Any, Any, Any], form: dict[str, Any]) -> None:
    """A form that changes something: refused without its session's CSRF token."""
    given = form.get("csrf")
    if not csrf_ok(request, given if isinstance(given, str) else None):
        raise refuse_csrf()
