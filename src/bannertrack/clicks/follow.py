"""Following a tracking link: the banner, its Location, and the click counted.

The one implementation of the link, for the Litestar route and for ``LinkFastPath``
(``api/tracking.py`` reads the request into a ``Visit`` and calls ``follow``). The
Location is built first: a click whose redirect cannot be sent is never counted.
"""

from __future__ import annotations

import logging

from bannertrack.clicks.links import UnusableTargetError, redirect_location, with_click_id
from bannertrack.clicks.recording import ClickRecorder, Visit
from bannertrack.clicks.signing import ClickSigner, Signed
from bannertrack.conversions.click_ids import new_click_id
from bannertrack.errors import NotFoundError
from bannertrack.models import Banner
from bannertrack.repository import Repository
from bannertrack.timeutil import utcnow

log = logging.getLogger("bannertrack.api")

_warned: set[int] = set()  # banners whose unusable target was logged (once per process)


def _location(banner: Banner, query_string: str) -> str:
    try:
        return redirect_location(banner, query_string)
    except UnusableTargetError:
        if banner.id not in _warned and len(_warned) < 1024:
            _warned.add(banner.id)
            log.warning("banner %d: stored target_url cannot be a Location; update it", banner.id)
        raise


async def follow(
    repository: Repository,
    clicks: ClickRecorder,
    visit: Visit,
    banner_id: int,
    signer: ClickSigner | None = None,
) -> str:
    """Count the click (when the visit counts) and return the redirect's Location.

    With ``signer``, a placement's signed click URL (``p``, ``ts``, ``sig``) is judged:
    the click carries the verdict and the placement it vouches for, and the three are
    not forwarded to the target.

    A banner with a ``click_id_param`` gets a fresh click id in the Location, stored
    with the click (bots and repeats too: a conversion may follow a repeat); the id
    holds the time the click fell in (``conversions/click_ids.py``), so the click is
    timed here. A HEAD or a prefetch counts no click, so its Location carries no id.

    Raises ``NotFoundError`` (no such banner, or deleted before the click was written),
    ``UnusableTargetError`` (409), or the click writer's ``UnavailableError`` (503).
    """
    banner = await repository.get_banner(banner_id)
    if banner is None:
        clicks.metrics.unknown_banner.labels("click").inc()
        raise NotFoundError(f"banner {banner_id} not found")
    signed = (
        signer.verdict(banner_id, visit.query_string)
        if signer is not None
        else Signed(None, None, visit.query_string)
    )
    location = _location(banner, signed.rest)
    if visit.counts:
        click_id = at = None
        if banner.click_id_param is not None:  # one attribute test when there is none
            at = utcnow()
            click_id = new_click_id(at)
            location = with_click_id(location, banner.click_id_param, click_id)
        recorded = await clicks.record_visit(
            visit, banner_id, signed.placement_id, signed.verdict, click_id, at
        )
        if recorded is None:  # deleted between the lookup and the write
            raise NotFoundError(f"banner {banner_id} not found")
    return location
