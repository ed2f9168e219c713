"""``CachePolicy``: the TTL of every cached namespace, as one plain value.

Whoever assembles the service (``bootstrap``) fills it from the settings, so neither
this module nor ``CachedRepository`` knows where configuration comes from.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """TTLs (seconds) per namespace, and how often impression counts are refreshed.

    A plain value: whoever assembles the service fills it from the settings, so this
    module does not know where configuration comes from.
    """

    banner_ttl: float = 300.0
    click_stats_ttl: float = 120.0
    banner_stats_ttl: float = 180.0
    top_banners_ttl: float = 60.0
    impressions_refresh: float = 0.5
    breakdown_ttl: float = 120.0
