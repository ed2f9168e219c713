"""Turn an HTTP request into a ``ClickIn``: the raw IP stops here.

The address is reduced to a visitor key and a country in this function and is not passed
on, returned or logged (no prefix of it is kept); the user agent decides the bot flag and,
with the referrer and the link's query, the breakdown facts (``click_facts``) here too.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from bannertrack.api.context import AppContext
from bannertrack.bots import classify
from bannertrack.click_facts import derive
from bannertrack.models import ClickIn, RecordedClick
from bannertrack.privacy import client_address
from bannertrack.timeutil import utcnow

_MAX_UA = 1024
_MAX_REFERRER = 2048


async def click_from_request(
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
    verdict = classify(user_agent[:_MAX_UA] if user_agent else None)
    return ClickIn(
        banner_id=banner_id,
        occurred_at=utcnow(),
        user_agent=user_agent[:_MAX_UA] if user_agent else None,
        referrer=referrer[:_MAX_REFERRER] if referrer else None,
        visitor=await ctx.hasher.visitor(ip, user_agent),
        bot=verdict.bot,
        bot_reason=verdict.reason,
        # utm_* from the query: the tracking link's, or the server-to-server POST URL's.
        facts=derive(
            ip,
            user_agent[:_MAX_UA] if user_agent else None,
            referrer[:_MAX_REFERRER] if referrer else None,
            request.scope.get("query_string", b"").decode("latin-1"),
        ),
    )


def count_flags(ctx: AppContext, recorded: RecordedClick) -> None:
    if recorded.bot:
        ctx.metrics.clicks_flagged.labels("bot").inc()
    elif recorded.repeat:
        ctx.metrics.clicks_flagged.labels("repeat").inc()
