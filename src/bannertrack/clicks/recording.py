"""Turn a click into a ``ClickIn``: the raw IP stops here.

Two sources: the tracking link (the visitor's own request: peer address, or a trusted
proxy's X-Forwarded-For, and the request's headers) and a server-to-server report (only
the facts the calling server states, never the caller's own address, agent or Referer).
Both arrive as plain values (``Visit``, ``ClickReport`` and a query string): the HTTP
layer (``api/``) reads them off the request, and nothing here knows of Litestar or ASGI.
The address is reduced to a visitor key and a country in this module and is not passed
on, returned or logged (no prefix of it is kept); the user agent decides the bot flag
and, with the referrer and the query, the breakdown facts (``clicks/facts.py``) here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import msgspec

from bannertrack.clicks.bots import Verdict, classify
from bannertrack.clicks.facts import derive
from bannertrack.clicks.ingest import ClickIngest
from bannertrack.clicks.privacy import IPNetwork, VisitorHasher, client_address, parse_address
from bannertrack.clicks.storable import require_storable, storable
from bannertrack.errors import InvalidInputError
from bannertrack.metrics import Metrics
from bannertrack.models import ClickIn, RecordedClick, SpooledClick
from bannertrack.timeutil import utcnow

_MAX_UA = 1024
_MAX_REFERRER = 2048
# A report that does not name the agent is not a browser that sent none: the calling
# server simply did not say. It is not flagged (docs/counting.md, "Server-to-server").
_UNREPORTED = Verdict(bot=False, reason=None)


class ClickReport(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A click reported server-to-server: the end user's facts as the caller saw them.

    ``ip`` is hashed, never stored; a field left out is unknown, never filled in from
    the calling server's own request.
    """

    ip: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    user_agent: Annotated[str, msgspec.Meta(max_length=_MAX_UA)] | None = None
    referrer: Annotated[str, msgspec.Meta(max_length=_MAX_REFERRER)] | None = None


class Visit(msgspec.Struct, frozen=True):
    """A tracking-link request as plain values: what the HTTP layer hands the domain.

    Header values are the first of each, as sent (latin-1 text); ``None`` when absent.
    A msgspec Struct, not a frozen dataclass: it is built on every click, and a frozen
    dataclass pays an ``object.__setattr__`` per field (about 1 us here).
    """

    query_string: str
    counts: bool  # a GET that is no browser prefetch: HEAD and prefetches are not clicks
    peer: str | None  # the address of the socket's other end
    forwarded_for: str | None  # X-Forwarded-For, believed from trusted proxies only
    user_agent: str | None
    referrer: str | None


@dataclass(frozen=True, slots=True)
class ClickRecorder:
    """What recording a click needs, built once at start-up: the handlers' one dependency."""

    ingest: ClickIngest
    hasher: VisitorHasher
    trusted_proxies: tuple[IPNetwork, ...]
    metrics: Metrics

    async def record_visit(
        self,
        visit: Visit,
        banner_id: int,
        placement_id: int | None = None,
        signature: str | None = None,
        click_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> RecordedClick | SpooledClick | None:
        """A tracking-link click, committed (or spooled); ``None`` when the banner is gone.

        ``signature`` is the verdict on a placement's signed click URL (``None``: a plain
        link); any but "valid" sets the click apart as ``signature_<verdict>``, and
        ``placement_id`` is the placement the signature vouches for. ``click_id``: the id
        the link put in the Location (the banner's click_id_param), and ``occurred_at``
        the time it holds (``None``: now)."""
        click = await click_from_visit(self, visit, banner_id, click_id, occurred_at)
        if signature is not None:
            click = signed_click(click, placement_id, signature)
        return await self._record(click)

    async def record_report(
        self, report: ClickReport, banner_id: int, query_string: str
    ) -> RecordedClick | SpooledClick | None:
        """A reported click, committed (or spooled); ``None`` when the banner is gone.

        ``query_string`` is the POST URL's (its utm_* tags are the click's)."""
        return await self._record(await click_from_report(self, report, banner_id, query_string))

    async def _record(self, click: ClickIn) -> RecordedClick | SpooledClick | None:
        recorded = await self.ingest.record(click)
        if isinstance(recorded, RecordedClick):
            count_flags(self.metrics, recorded)
        return recorded


async def click_from_visit(
    ctx: ClickRecorder,
    visit: Visit,
    banner_id: int,
    click_id: str | None = None,
    occurred_at: datetime | None = None,
) -> ClickIn:
    """A tracking-link click: the visitor's own request is the evidence."""
    ip = client_address(visit.peer, visit.forwarded_for, ctx.trusted_proxies)
    # Header text no column can hold (NUL) is dropped here, before the click joins a batch.
    user_agent = storable(visit.user_agent)
    user_agent = user_agent[:_MAX_UA] if user_agent else None
    referrer = storable(visit.referrer)
    referrer = referrer[:_MAX_REFERRER] if referrer else None
    verdict = classify(user_agent)
    return await _click(
        ctx, banner_id, ip, user_agent, referrer, verdict, visit.query_string, click_id, occurred_at
    )


async def click_from_report(
    ctx: ClickRecorder, report: ClickReport, banner_id: int, query_string: str
) -> ClickIn:
    """A reported click: only what the caller states (it holds an ingest or admin token).

    No ``ip`` means no visitor key, so the click can never be a repeat; no
    ``user_agent`` (absent or null) means "not reported" and is not flagged, while an
    empty string is a reported empty agent and is flagged like a browser sending none.
    The utm_* facts come from the query of the POST URL, which the caller also chose.
    """
    # The caller can fix its body: text no column can hold is refused (400), not cleaned.
    require_storable(ip=report.ip, user_agent=report.user_agent, referrer=report.referrer)
    if report.ip is not None and parse_address(report.ip) is None:
        raise InvalidInputError("ip must be an IPv4 or IPv6 address, without a port")
    agent = report.user_agent
    verdict = _UNREPORTED if agent is None else classify(agent or None)
    referrer = report.referrer or None
    return await _click(ctx, banner_id, report.ip, agent or None, referrer, verdict, query_string)


async def _click(
    ctx: ClickRecorder,
    banner_id: int,
    ip: str | None,
    user_agent: str | None,
    referrer: str | None,
    verdict: Verdict,
    query_string: str,
    click_id: str | None = None,
    occurred_at: datetime | None = None,
) -> ClickIn:
    return ClickIn(
        banner_id=banner_id,
        occurred_at=utcnow() if occurred_at is None else occurred_at,
        user_agent=user_agent,
        referrer=referrer,
        visitor=await ctx.hasher.visitor(ip, user_agent),
        bot=verdict.bot,
        bot_reason=verdict.reason,
        facts=derive(ip, user_agent, referrer, query_string),
        click_id=click_id,
    )


def signed_click(click: ClickIn, placement_id: int | None, signature: str) -> ClickIn:
    """``click`` with its placement and signature verdict; a bad signature sets it apart
    (a bot's own reason, when it is one, is kept: it says more)."""
    flagged = click.bot or signature == "valid"
    return msgspec.structs.replace(
        click,
        placement_id=placement_id,
        signature=signature,
        bot=True if not flagged else click.bot,
        bot_reason=click.bot_reason if flagged else f"signature_{signature}",
    )


def count_flags(metrics: Metrics, recorded: RecordedClick) -> None:
    if recorded.bot:
        metrics.clicks_flagged.labels("bot").inc()
    elif recorded.repeat:
        metrics.clicks_flagged.labels("repeat").inc()
