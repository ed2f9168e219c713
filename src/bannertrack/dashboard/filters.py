"""Filters in the page's URL: ``/?range=7d&country=DE&utm_source=newsletter``.

A click on any value of any list adds ``<dimension>=<value>`` to the URL (a banner adds
``banner=<id>``), so a filtered view is a link to share. Each filter shows as a chip
whose link is the same URL without it. A value the rollups could never hold (longer than
100 characters, or an id that is no id) is dropped with a notice, never an error page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlencode

import pycountry

from bannertrack.models import DIMENSIONS, NONE_VALUE, ClickFilter, Dimension

MAX_VALUE = 100  # the length of the rollups' value column and of the click facts
# The URL keys that are not filters: the range form's.
PAGE_KEYS = ("range", "from", "to")
LABELS: dict[str, str] = {
    "banner": "Banner",
    "referrer": "Referrer",
    "utm_source": "Source",
    "utm_medium": "Medium",
    "utm_campaign": "Campaign",
    "country": "Country",
    "device": "Device",
    "browser": "Browser",
    "os": "OS",
}
FILTER_KEYS: tuple[str, ...] = ("banner", *DIMENSIONS)


@lru_cache(maxsize=512)
def country_name(code: str) -> str:
    """ "Germany" for "DE"; the code itself when ISO 3166 does not know it."""
    found = pycountry.countries.get(alpha_2=code.upper()) if len(code) == 2 else None
    if found is None:
        return code
    return str(getattr(found, "common_name", None) or found.name)


def shown_value(by: str, value: str) -> str:
    if by == "country" and value != NONE_VALUE:
        return f"{country_name(value)}"
    return value


@dataclass(frozen=True, slots=True)
class Chip:
    key: str
    label: str
    value: str
    shown: str
    remove_url: str


@dataclass(frozen=True, slots=True)
class PageFilter:
    """The filters of one page view, the URL parameters they came from, and the notices."""

    click_filter: ClickFilter
    params: tuple[tuple[str, str], ...]  # every kept parameter, range ones included
    notices: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return not self.click_filter.empty

    def url(self, path: str, **changes: str | None) -> str:
        """This view's URL at ``path`` with ``changes`` (``None`` removes a key)."""
        kept = dict(self.params)
        for key, value in changes.items():
            key = key.rstrip("_")
            if value is None:
                kept.pop(key, None)
            else:
                kept[key] = value
        query = urlencode([(k, kept[k]) for k in (*PAGE_KEYS, *FILTER_KEYS) if k in kept])
        return f"{path}?{query}" if query else path

    def filter_url(self, path: str, by: str, value: str) -> str:
        return self.url(path, **{by: value})

    def chips(self, path: str, banner_names: Mapping[int, str]) -> tuple[Chip, ...]:
        chips = []
        f = self.click_filter
        if f.banner_id is not None and path == "/":
            name = banner_names.get(f.banner_id, f"#{f.banner_id}")
            chips.append(
                Chip("banner", "Banner", str(f.banner_id), name, self.url(path, banner=None))
            )
        for by, value in f.values:
            chips.append(
                Chip(by, LABELS[by], value, shown_value(by, value), self.url(path, **{by: None}))
            )
        return tuple(chips)


def page_filter(query: Mapping[str, str], banner_id: int | None = None) -> PageFilter:
    """The page's filters from its query string; ``banner_id``: the banner page's own."""
    params: list[tuple[str, str]] = [(k, query[k]) for k in PAGE_KEYS if query.get(k)]
    notices: list[str] = []
    chosen = banner_id
    if banner_id is None and (raw := query.get("banner")):
        if raw.isdigit() and 0 < len(raw) < 19:
            chosen = int(raw)
            params.append(("banner", raw))
        else:
            notices.append("The banner filter was no banner id and is left out.")
    values: list[tuple[Dimension, str]] = []
    for by in DIMENSIONS:
        value = query.get(by)
        if not value:
            continue
        if len(value) > MAX_VALUE:
            notices.append(f"The {LABELS[by].lower()} filter is too long and is left out.")
            continue
        values.append((by, value))
        params.append((by, value))
    return PageFilter(
        ClickFilter(banner_id=chosen, values=tuple(values)), tuple(params), tuple(notices)
    )
