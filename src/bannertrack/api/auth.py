"""Bearer-token guards: the admin token, and the ingest token for click reports.

With no token configured the guarded endpoints are refused (403), never open, and every
comparison runs in constant time so a token cannot be guessed byte by byte.

Who can do what is written down in docs/security.md: anyone may follow a tracking link,
load the pixel and read statistics; a server holding ``BANNERTRACK_INGEST_TOKEN`` (or the
admin token) may also report clicks with the end user's address and agent; the admin
token alone changes banners, manages the cache and exports raw clicks.

The tokens are read from the ``Settings`` that ``create_app`` puts in the app's state
(``bootstrap.web.settings_of``, checked by type, not cast): a guard runs before
dependencies are resolved, so it cannot take one.

The guards are ``async`` although they never await: Litestar runs a plain function guard
in a thread pool, a thread hop per request.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from bannertrack.bootstrap.web import settings_of


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> bytes | None:
    scheme, _sep, given = connection.headers.get("authorization", "").partition(" ")
    return given.strip().encode() if scheme.lower() == "bearer" else None


def _matches(given: bytes | None, expected: str) -> bool:
    # An empty expected token matches nothing (it means "not configured").
    return bool(expected) and given is not None and hmac.compare_digest(given, expected.encode())


def _refused(what: str) -> NotAuthorizedException:
    return NotAuthorizedException(
        f"missing or wrong {what}", headers={"WWW-Authenticate": "Bearer"}
    )


async def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    expected = settings_of(connection).admin_token
    if not expected:
        raise PermissionDeniedException(
            "admin endpoints are disabled: set BANNERTRACK_ADMIN_TOKEN on the server"
        )
    if not _matches(_bearer(connection), expected):
        raise _refused("admin token")


async def ingest_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Click reports need the ingest token or the admin token.

    The tracking link is the public way to click; a report is a server vouching for an end
    user's address and agent, which only a caller we trust may do (issue 12, item 4).
    """
    settings = settings_of(connection)
    ingest = settings.ingest_token
    admin = settings.admin_token
    if not ingest and not admin:
        raise PermissionDeniedException(
            "click reports are disabled: set BANNERTRACK_INGEST_TOKEN on the server"
        )
    given = _bearer(connection)
    # Both comparisons run, so the time taken does not say which token was close.
    ok_ingest, ok_admin = _matches(given, ingest), _matches(given, admin)
    if not (ok_ingest or ok_admin):
        raise _refused("ingest token")
