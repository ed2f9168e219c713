"""The key schema is one definition: keys, namespaces, endpoints and the policy's source."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

from bannertrack.bootstrap import cache_policy
from bannertrack.cache._stats import namespace_of
from bannertrack.caching import keys as cache_keys
from bannertrack.caching.policy import CachePolicy
from bannertrack.config import Settings


def test_keys_are_those_of_the_design() -> None:
    assert cache_keys.banner_keys(7) == ("banner:7", "click_stats:7", "banner_stats:7")
    assert cache_keys.top_banners_key(10) == "top_banners:10"
    assert cache_keys.top_banners_key(10, "valid") == "top_banners:10:valid"
    assert cache_keys.updated_keys(7) == ("banner:7", "banner_stats:7")
    assert cache_keys.clicked_keys(7) == ("click_stats:7", "banner_stats:7")


def test_every_key_lives_in_a_listed_namespace_and_under_its_prefix() -> None:
    day = datetime(2026, 11, 1, tzinfo=UTC)
    breakdown = cache_keys.breakdown_key(3, "country", "valid", 10, day, day)
    assert breakdown == "breakdown:3:country:valid:10:2026-11-01:2026-11-01"
    assert breakdown.startswith(cache_keys.breakdown_prefix(3))
    assert cache_keys.breakdown_prefixes([3, 4]) == (
        "breakdown:3:",
        "breakdown:4:",
        "breakdown:all:",
    )
    keys = [*cache_keys.banner_keys(3), cache_keys.top_banners_key(5, "valid"), breakdown]
    for key in keys:
        ns = namespace_of(key)
        assert ns in cache_keys.NAMESPACES
        assert key.startswith(cache_keys.prefix(ns))
    assert cache_keys.top_banners_key(5).startswith(cache_keys.TOP_BANNERS_PREFIX)
    assert len(set(cache_keys.NAMESPACES)) == len(cache_keys.NAMESPACES)


def test_each_measured_endpoint_names_a_cached_namespace_once() -> None:
    namespaces = [endpoint.namespace for endpoint in cache_keys.ENDPOINTS.values()]
    assert len(set(namespaces)) == len(namespaces)
    assert set(namespaces) <= set(cache_keys.NAMESPACES)
    assert all(e.path.startswith("/api/v1/banners") for e in cache_keys.ENDPOINTS.values())


def test_the_policy_takes_every_ttl_from_the_settings() -> None:
    settings = Settings(
        cache_ttl_banner=11.0,
        cache_ttl_click_stats=12.0,
        cache_ttl_banner_stats=13.0,
        cache_ttl_top_banners=14.0,
        impressions_refresh=0.75,
    )
    policy = cache_policy(settings)
    assert policy == CachePolicy(11.0, 12.0, 13.0, 14.0, 0.75, settings.cache_ttl_breakdown)
    assert {f.name for f in fields(CachePolicy)} == {
        "banner_ttl",
        "click_stats_ttl",
        "banner_stats_ttl",
        "top_banners_ttl",
        "impressions_refresh",
        "breakdown_ttl",
    }
