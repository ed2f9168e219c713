"""A click as the service keeps it: its facts, what is stored, spooled and exported.

``Dimension`` names the facts a breakdown groups clicks by; the rollup markers
(``NONE_VALUE``, ``DAY_TOTAL``, ``AGENT``...) are the values a stored breakdown adds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

import msgspec

# What a breakdown groups clicks by (docs/counting.md says how each is derived). The
# first eight are facts of the click (DIMENSIONS, in click_breakdowns); "placement" is
# the placement whose signed click URL brought it (read from placement_minutes).
Dimension = Literal[
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "country",
    "device",
    "browser",
    "os",
    "placement",
]
DIMENSIONS: tuple[Dimension, ...] = (
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "country",
    "device",
    "browser",
    "os",
)


class ClickFacts(msgspec.Struct, frozen=True, kw_only=True):
    """Where a click came from, derived at ingest (``bannertrack.clicks.facts``).

    ``None`` is "not known" (no referrer, an address without a country, an old click).
    """

    country: str | None = None
    device: str | None = None
    browser: str | None = None
    os: str | None = None
    referrer_host: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None

    def value(self, by: Dimension) -> str | None:
        return getattr(self, _FACT_OF[by])  # type: ignore[no-any-return]


# Rollup values that no client can send: a click without a value, and the fold of
# values beyond the per-day top N (db/breakdown_writes.py).
NONE_VALUE = "(none)"
# The rollup row counting a (banner, day)'s clicks that have no ``AGENT`` row: its
# dimension and its value. "(none)" is not stored: it is these rows' count and the
# ``AGENT`` rows' count less the dimension's stored values (db/breakdown_queries.py).
DAY_TOTAL = "*"
OTHER_VALUE = "(other)"
# The rollup dimension counting device, browser and OS together, one row per distinct
# triple (db/breakdown_writes.py); not a dimension a breakdown is asked by.
AGENT = "agent"
AGENT_PARTS: tuple[Dimension, ...] = ("device", "browser", "os")
AGENT_SEPARATOR = "\x1f"  # between the parts of an ``AGENT`` value
# The field of ClickFacts (and the column of ``clicks``) behind each dimension.
_FACT_OF: dict[Dimension, str] = {d: d for d in DIMENSIONS} | {"referrer": "referrer_host"}


class ClickIn(msgspec.Struct, frozen=True, kw_only=True):
    """What the service keeps of one click request; the raw IP is already gone.

    ``bot`` is decided from the request alone; whether the click is a repeat needs the
    visitor's earlier clicks, so the repository decides that when it stores the click.
    """

    banner_id: int
    occurred_at: datetime
    user_agent: str | None = None
    referrer: str | None = None
    visitor: str | None = None
    bot: bool = False
    bot_reason: str | None = None
    facts: ClickFacts | None = None
    # A click through a placement's signed click URL (clicks/signing.py): the
    # placement its signature vouches for, and the verdict ("valid", "tampered",
    # "expired", "missing"); both None for a plain link.
    placement_id: int | None = None
    signature: str | None = None
    # The random id the link put in the Location (the banner's ``click_id_param``).
    click_id: str | None = None


class RecordedClick(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    banner_id: int
    occurred_at: datetime
    bot: bool = False
    bot_reason: str | None = None
    repeat: bool = False


class SpooledClick(msgspec.Struct, frozen=True, kw_only=True):
    """A click kept on this instance's disk while the database is down (answered 202).

    It is stored in the database, with its id and flags, once the database answers
    (``clicks/spool.py``); until then neither is known.
    """

    banner_id: int
    occurred_at: datetime
    spooled: bool = True


class ImpressionCount(msgspec.Struct, frozen=True, kw_only=True):
    """Impressions of one banner within one UTC minute (``minute`` is its start)."""

    banner_id: int
    minute: datetime
    count: int
    placement_id: int | None = None  # served by this placement (``GET /p/{id}``)


class ExportedClick(msgspec.Struct, frozen=True, kw_only=True):
    """One raw click as the CSV export writes it (keyset-paged by ``(occurred_at, id)``)."""

    id: int
    occurred_at: datetime
    visitor: str | None
    user_agent: str | None
    referrer: str | None
    bot: bool
    bot_reason: str | None
    repeat: bool


class SealedSalt(NamedTuple):
    """One ``visitor_salts`` row's payload: the sealed salt and the sealing key's check."""

    sealed: bytes
    key_check: bytes
