"""The click filters of the range API: ``?country=DE&utm_source=newsletter`` and friends.

One dependency reads them for every range endpoint (totals, traffic, top, breakdown), so
each documents the same query parameters. A filter on a click fact is counted exactly
from the raw clicks (``Explorer``), while retention keeps them: an answer whose range
starts earlier carries ``incomplete_before``. Without filters the rollups answer, as
before.
"""

from __future__ import annotations

from typing import Annotated

from litestar.di import Provide
from litestar.params import QueryParameter

from bannertrack.models import DIMENSIONS, ClickFilter, Dimension

_MAX = 100  # the length of the click facts' columns


def _param(what: str) -> object:
    return QueryParameter(
        max_length=_MAX,
        description=f'Count only clicks whose {what} is this value ("(none)": clicks '
        "without one). Filters combine; a filtered answer counts raw clicks.",
    )


async def click_filter(
    referrer: Annotated[str | None, _param("referrer host")] = None,
    utm_source: Annotated[str | None, _param("utm_source")] = None,
    utm_medium: Annotated[str | None, _param("utm_medium")] = None,
    utm_campaign: Annotated[str | None, _param("utm_campaign")] = None,
    country: Annotated[str | None, _param("country (ISO 3166-1 alpha-2)")] = None,
    device: Annotated[str | None, _param("device class")] = None,
    browser: Annotated[str | None, _param("browser")] = None,
    os: Annotated[str | None, _param("operating system")] = None,
) -> ClickFilter:
    given: dict[Dimension, str | None] = {
        "referrer": referrer,
        "utm_source": utm_source,
        "utm_medium": utm_medium,
        "utm_campaign": utm_campaign,
        "country": country,
        "device": device,
        "browser": browser,
        "os": os,
    }
    return ClickFilter(values=tuple((d, v) for d in DIMENSIONS if (v := given[d])))


FILTER_DEPENDENCY = {"click_filter": Provide(click_filter)}
