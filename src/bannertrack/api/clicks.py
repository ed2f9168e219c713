"""Turn an HTTP request into a ``ClickIn``: the raw IP stops here."""

from __future__ import annotations

from typing import Any

from litestar import Request

from bannertrack.api.context import AppContext
from bannertrack.models import ClickIn
from bannertrack.privacy import client_address, ip_prefix
from bannertrack.timeutil import utcnow

_MAX_UA = 1024
_MAX_REFERRER = 2048


def click_from_request(
    ctx: AppContext,
    request: Request[Any, Any, Any],
    banner_id: int,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
    referrer: str | None = None,
) -> ClickIn:
    """Build the stored facts of a click; explicit values (server-to-server) win."""
    if ip is None:
        peer = request.client.host if request.client else None
        ip = client_address(peer, request.headers.get("x-forwarded-for"), ctx.trusted_proxies)
    if user_agent is None:
        user_agent = request.headers.get("user-agent")
    if referrer is None:
        referrer = request.headers.get("referer")
    return ClickIn(
        banner_id=banner_id,
        occurred_at=utcnow(),
        user_agent=user_agent[:_MAX_UA] if user_agent else None,
        referrer=referrer[:_MAX_REFERRER] if referrer else None,
        visitor=ctx.hasher.visitor(ip, user_agent),
        ip_prefix=ip_prefix(ip),
    )
