"""The URL's filters and the banner form, without a server."""

from __future__ import annotations

import pytest

from bannertrack.dashboard.banner_forms import form_fields, parse, values_of
from bannertrack.dashboard.filters import country_name, page_filter
from bannertrack.models import BannerCreate, BannerUpdate

pytestmark = pytest.mark.unit
GOOD = {"name": "Sale", "image_url": "https://a.example/x.png", "target_url": "https://b.example/"}


def test_filters_from_the_url_and_back() -> None:
    f = page_filter({"range": "7d", "country": "DE", "utm_source": "news", "banner": "3"})
    assert f.click_filter.banner_id == 3
    assert f.click_filter.values == (("utm_source", "news"), ("country", "DE"))
    assert f.url("/") == "/?range=7d&banner=3&utm_source=news&country=DE"
    assert f.url("/", country=None) == "/?range=7d&banner=3&utm_source=news"
    assert f.filter_url("/", "os", "iOS & more") == (
        "/?range=7d&banner=3&utm_source=news&country=DE&os=iOS+%26+more"
    )
    chips = f.chips("/", {3: "Spring"})
    assert [(c.key, c.shown) for c in chips] == [
        ("banner", "Spring"),
        ("utm_source", "news"),
        ("country", "Germany"),
    ]
    assert chips[2].remove_url == "/?range=7d&banner=3&utm_source=news"


def test_unusable_filters_are_dropped_with_a_notice() -> None:
    f = page_filter({"banner": "x1", "referrer": "r" * 101, "device": "mobile"})
    assert f.click_filter.banner_id is None
    assert f.click_filter.values == (("device", "mobile"),)
    assert len(f.notices) == 2


def test_country_names() -> None:
    assert country_name("DE") == "Germany"
    assert country_name("XX") == "XX"  # unknown codes stay as they are


def test_the_form_has_every_field_of_the_struct() -> None:
    names = [f.name for f in form_fields()]
    assert names[:3] == ["name", "image_url", "target_url"]
    assert set(names) == set(BannerCreate.__struct_fields__)
    assert values_of(None)["active"] is True


def test_a_form_is_checked_like_an_api_body() -> None:
    data, errors = parse({**GOOD, "active": "on"}, BannerCreate)
    assert errors == {} and data is not None and data.active and not data.forward_query
    assert parse({**GOOD, "name": ""}, BannerCreate)[1] == {"name": "Expected `str` of length >= 1"}
    assert "image_url" in parse({**GOOD, "image_url": "ftp://a.example/x"}, BannerCreate)[1]
    update, errors = parse(GOOD, BannerUpdate)
    assert errors == {} and update is not None and update.name == "Sale"


def test_schedule_and_targeting_messages_sit_beside_their_field() -> None:
    if "ends_at" not in BannerCreate.__struct_fields__:
        pytest.fail("the banner schedule is on main (placements): this test expects it")
    late = {**GOOD, "starts_at": "2026-12-10T10:00", "ends_at": "2026-12-01T10:00"}
    assert parse(late, BannerCreate)[1] == {"ends_at": "ends_at must be after starts_at"}
    assert "countries" in parse({**GOOD, "countries": "DE, XX"}, BannerCreate)[1]
    assert parse({**GOOD, "cap_per_day": "many"}, BannerCreate)[1] == {
        "cap_per_day": "a whole number"
    }
    data, errors = parse({**GOOD, "countries": "DE, AT"}, BannerCreate)
    assert errors == {} and data is not None and data.countries == ("AT", "DE")
    data, _ = parse({**GOOD, "countries": ""}, BannerCreate)
    assert data is not None and data.countries is None
