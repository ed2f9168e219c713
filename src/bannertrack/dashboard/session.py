"""The dashboard's sign-in: a server-side session with a CSRF token, and the guards.

``/login`` takes the admin token once; the browser then holds only a random session id in
a cookie that scripts cannot read (``HttpOnly``), that no other site's page sends
(``SameSite=Strict``) and that travels only over HTTPS when the request came over HTTPS
(``Secure``; behind a trusted proxy, its ``X-Forwarded-Proto`` says so). The token itself
is never stored in the browser.

Litestar's server-side session middleware keeps the data in a store: Redis when
``BANNERTRACK_REDIS_URL`` is set (every instance sees every session), else files under
``BANNERTRACK_SESSION_DIR`` (every worker of one host). Two changes to its backend: a
visitor who never signed in gets no cookie and no stored session (the stock backend
stores an empty one per request), and signing in takes a fresh session id, so an id
planted before sign-in is worth nothing after it.

Every form carries the session's CSRF token (synchronizer pattern); a POST without the
token of its session is refused with 403, whatever its cookie.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.stores.base import Store
from litestar.stores.file import FileStore
from litestar.stores.redis import RedisStore
from litestar.types import Empty, Message, ScopeSession
from litestar.utils.dataclass import extract_dataclass_items

from bannertrack.bootstrap.web import settings_of
from bannertrack.clicks.privacy import parse_networks
from bannertrack.config import Settings

SESSION_STORE = "dashboard_sessions"
COOKIE = "bt_session"
ADMIN = "admin"
CSRF = "csrf"
_ROTATE = "_rotate"  # set by sign-in: store the session under a new id
SESSION_HOURS = 12


def session_store(settings: Settings) -> Store:
    if settings.redis_url:
        return RedisStore.with_client(
            settings.redis_url, namespace=f"{settings.redis_prefix}session"
        )
    path = Path(settings.session_dir).expanduser()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return FileStore(path)


def over_https(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    public = settings_of(connection).public_url
    if public:  # the service's stated address says how browsers reach it
        return public.startswith("https://")
    if connection.scope.get("scheme") == "https":
        return True
    proto = connection.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    client = connection.client.host if connection.client else None
    if proto != "https" or client is None:
        return False
    try:
        peer = ipaddress.ip_address(client)
    except ValueError:
        return False
    return any(peer in net for net in parse_networks(settings_of(connection).trusted_proxies))


class _Backend(ServerSideSessionBackend):
    async def store_in_message(
        self,
        scope_session: ScopeSession,
        message: Message,
        connection: ASGIConnection[Any, Any, Any, Any],
    ) -> None:
        had_cookie = bool(connection.cookies.get(self.config.key))
        if (scope_session is Empty or not scope_session) and not had_cookie:
            return  # nobody signed in and nothing to forget: no cookie, no stored session
        store = self.config.get_store_from_app(connection.scope["app"])
        headers = MutableScopeHeaders.from_message(message)
        session_id = self.get_session_id(connection)
        params: dict[str, Any] = dict(
            extract_dataclass_items(self.config, exclude_none=True, include=Cookie.__dict__.keys())
        )
        params["secure"] = over_https(connection)
        if scope_session is Empty or not scope_session:
            await self.delete(session_id, store=store)
            cookie = Cookie(value="null", key=self.config.key, expires=0, **params)
        else:
            data = dict(scope_session) if isinstance(scope_session, dict) else {}
            if data.pop(_ROTATE, False):
                await self.delete(session_id, store=store)
                session_id = self.generate_session_id()
            await self.set(session_id, self.serialize_data(data, connection.scope), store=store)
            cookie = Cookie(value=session_id, key=self.config.key, **params)
        headers.add("Set-Cookie", cookie.to_header(header=""))


@dataclass
class _Config(ServerSideSessionConfig):
    _backend_class = _Backend


def session_config() -> ServerSideSessionConfig:
    return _Config(
        key=COOKIE,
        store=SESSION_STORE,
        samesite="strict",
        httponly=True,
        max_age=SESSION_HOURS * 3600,
        exclude=["^/dashboard/static"],
    )


def _session(connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
    session = connection.scope.get("session")
    return session if isinstance(session, dict) else {}


def is_admin(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return _session(connection).get(ADMIN) is True


def csrf_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The session's CSRF token, made (and a session started) on first use."""
    session = _session(connection)
    token = session.get(CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        connection.set_session({**session, CSRF: token})
    return token


def csrf_ok(connection: ASGIConnection[Any, Any, Any, Any], given: str | None) -> bool:
    expected = _session(connection).get(CSRF)
    return (
        isinstance(expected, str)
        and given is not None
        and hmac.compare_digest(given.encode(), expected.encode())
    )


def sign_in(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    connection.set_session({ADMIN: True, CSRF: secrets.token_urlsafe(32), _ROTATE: True})


def sign_out(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    connection.clear_session()


def token_matches(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


async def admin_session_guard(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Pages and forms that change things: a signed-in session (then the CSRF check)."""
    if not is_admin(connection):
        raise NotAuthorizedException("sign in at /login with the admin token first")


def refuse_csrf() -> PermissionDeniedException:
    return PermissionDeniedException("the form's CSRF token is missing or stale: reload the page")
