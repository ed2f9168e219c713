"""The admin guard: ``Authorization: Bearer <BANNERTRACK_ADMIN_TOKEN>``.

With no token configured the guarded endpoints are refused (403), never open, and the
comparison runs in constant time so the token cannot be guessed byte by byte.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler


def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    expected: str = connection.app.state.ctx.settings.admin_token
    if not expected:
        raise PermissionDeniedException(
            "admin endpoints are disabled: set BANNERTRACK_ADMIN_TOKEN on the server"
        )
    scheme, _sep, given = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        raise NotAuthorizedException(
            "missing or wrong admin token", headers={"WWW-Authenticate": "Bearer"}
        )
