"""Errors a browser sees as pages: a 404 with a way back, a refused form, a sign-in.

The API's errors stay JSON; a request for a page (``Accept: text/html``, outside
``/api/`` and the tracking endpoints) gets HTML. A page that needs the admin session
sends the browser to ``/login`` and back.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.response import Redirect, Template

from bannertrack.dashboard.web import HEADERS

_NOT_PAGES = ("/api/", "/c/", "/i/", "/p/", "/schema", "/metrics", "/healthz")
TITLES = {
    400: "That did not work",
    401: "Sign in first",
    403: "Refused",
    404: "Not found",
    405: "Not here",
}


def wants_page(request: Request[Any, Any, Any]) -> bool:
    path = request.url.path
    if path.startswith(_NOT_PAGES):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_page(
    request: Request[Any, Any, Any], status: int, message: str, headers: dict[str, str]
) -> Response[Any]:
    if status == 401 and "www-authenticate" not in {k.lower() for k in headers}:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(f"/login?next={quote(back, safe='/')}", status_code=303)
    return Template(
        "error.html.j2",
        context={
            "status": status,
            "title": TITLES.get(status, "Something went wrong"),
            "message": message,
            "signed_in": False,
            "csrf": "",
            "current": request.url.path,
        },
        status_code=status,
        headers={**HEADERS, **headers},
    )
