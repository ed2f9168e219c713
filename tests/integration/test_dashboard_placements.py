"""The placements pages over HTTP: the forms, the API's messages beside their fields, the
shares and the snippets, a forged form refused, and an HTML 404.

The forms call the store the placement API calls, so what they save is read back through
``/api/v1/placements`` and served by ``/p/{id}``.
"""

from __future__ import annotations

import asyncio
import html
import re
import time

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.integration.test_dashboard_http import sign_in
from tests.support.banners import make_banner

Client = AsyncTestClient[Litestar]
BROWSER = {"Accept": "text/html,application/xhtml+xml"}

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def shares(page: str) -> dict[int, tuple[int, str]]:
    """Banner id -> (weight, share shown) of the page's linked banners."""
    return {
        int(m.group(1)): (int(m.group(2)), m.group(3))
        for m in re.finditer(r'data-link="(\d+)" data-weight="(\d+)" data-share="([\d.]+)"', page)
    }


def field_error(page: str, field: str) -> str:
    m = re.search(rf'id="e-{re.escape(field)}">([^<]*)<', page)
    assert m, f"no message beside {field}"
    return html.unescape(m.group(1))


async def test_create_link_weigh_edit_and_delete(client: Client) -> None:
    csrf = await sign_in(client)
    first = await make_banner(client, 1)
    second = await make_banner(client, 2, name="Second & best")
    bad = await client.post(
        "/placements/new", data={"csrf": csrf, "name": "", "width": "0", "height": "wide"}
    )
    assert bad.status_code == 400
    assert field_error(bad.text, "height") == "a whole number of pixels, or empty"
    bad = await client.post("/placements/new", data={"csrf": csrf, "name": "", "width": "0"})
    assert bad.status_code == 400
    assert field_error(bad.text, "name") == "Expected `str` of length >= 1"
    bad = await client.post("/placements/new", data={"csrf": csrf, "name": "Top", "width": "0"})
    assert field_error(bad.text, "width") == "Expected `int` >= 1"
    assert 'aria-describedby="e-width h-width"' in bad.text
    made = await client.post(
        "/placements/new",
        data={"csrf": csrf, "name": "Top <bar>", "width": "728", "height": "90"},
        follow_redirects=False,
    )
    assert made.status_code == 303
    placement_id = int(made.headers["location"].split("?")[0].rsplit("/", 1)[1])
    api = (await client.get(f"/api/v1/placements/{placement_id}")).json()
    assert (api["name"], api["width"], api["height"]) == ("Top <bar>", 728, 90)
    listed = (await client.get("/placements")).text
    assert f'data-placement-row="{placement_id}"' in listed and "Top &lt;bar&gt;" in listed

    # Link two banners, one at a time, then weigh them 300 : 100.
    page = f"/placements/{placement_id}"
    for banner, weight in ((first, "300"), (second, "")):
        saved = await client.post(
            f"{page}/banners",
            data={"csrf": csrf, "add_banner": str(banner["id"]), "add_weight": weight}
            | {
                f"weight-{k}": str(w) for k, (w, _) in shares((await client.get(page)).text).items()
            },
            follow_redirects=False,
        )
        assert saved.status_code == 303, saved.text
    shown = (await client.get(page)).text
    assert shares(shown) == {first["id"]: (300, "75.0"), second["id"]: (100, "25.0")}
    assert "75.0 %" in shown and "25.0 %" in shown
    assert 'data-banner-count="2"' in (await client.get("/placements")).text
    stored = (await client.get(f"/api/v1/placements/{placement_id}/banners")).json()["banners"]
    assert stored == [
        {"banner_id": first["id"], "weight": 300},
        {"banner_id": second["id"], "weight": 100},
    ]
    # The snippets: absolute URLs as the service builds them, the size, the name escaped.
    iframe = html.unescape(re.search(r'data-snippet="iframe">([^<]*)<', shown).group(1))  # type: ignore[union-attr]
    assert iframe == (
        f'<iframe src="http://testserver.local/p/{placement_id}" width="728" height="90" '
        'title="Top &lt;bar&gt;" scrolling="no" style="border:0;overflow:hidden" '
        'loading="lazy"></iframe>'
    )
    assert f'value="http://testserver.local/p/{placement_id}?format=json"' in shown
    served = await client.get(f"/p/{placement_id}?format=json")
    assert served.status_code == 200 and served.json()["banner_id"] in (first["id"], second["id"])
    # The serve's impression reaches the page's "served" column (impressions are batched).
    deadline = time.monotonic() + 10
    while 'data-served-total="1"' not in (shown := (await client.get(page)).text):
        assert time.monotonic() < deadline, "the serve's impression never showed"
        await asyncio.sleep(0.05)
    row = re.search(rf'data-link="{served.json()["banner_id"]}".*?</tr>', shown, re.S)
    assert row and 'data-served="1"' in row.group(0) and "(100.0 %)" in row.group(0)

    # The API's messages beside the field: a weight out of range, an unknown banner.
    out_of_range = await client.post(
        f"{page}/banners",
        data={"csrf": csrf, f"weight-{first['id']}": "1001", f"weight-{second['id']}": "100"},
    )
    assert out_of_range.status_code == 400
    assert field_error(out_of_range.text, f"weight-{first['id']}") == "Expected `int` <= 1000"
    assert 'value="1001"' in out_of_range.text  # what was typed is shown again
    zero = await client.post(
        f"{page}/banners",
        data={"csrf": csrf, f"weight-{first['id']}": "300", f"weight-{second['id']}": "0"},
    )
    assert field_error(zero.text, f"weight-{second['id']}") == "Expected `int` >= 1"
    unknown = await client.post(
        f"{page}/banners",
        data={
            "csrf": csrf,
            f"weight-{first['id']}": "300",
            f"weight-{second['id']}": "100",
            "add_banner": "987654",
        },
    )
    assert unknown.status_code == 400
    assert field_error(unknown.text, "add_banner") == "banners: no banner with id [987654]"
    twice = await client.post(
        f"{page}/banners",
        data={
            "csrf": csrf,
            f"weight-{first['id']}": "300",
            f"weight-{second['id']}": "100",
            "add_banner": str(first["id"]),
        },
    )
    assert "given more than once" in field_error(twice.text, "add_banner")
    assert (await client.get(f"/api/v1/placements/{placement_id}/banners")).json()[
        "banners"
    ] == stored  # nothing refused was saved

    # Unlink one: the other takes the whole share.
    await client.post(
        f"{page}/banners",
        data={
            "csrf": csrf,
            f"weight-{first['id']}": "300",
            f"weight-{second['id']}": "100",
            f"remove-{first['id']}": "on",
        },
    )
    assert shares((await client.get(page)).text) == {second["id"]: (100, "100.0")}

    # Edit: a size cleared; then delete (confirmed only).
    edited = await client.post(
        f"{page}/edit",
        data={"csrf": csrf, "name": "Leaderboard", "width": "728", "height": ""},
        follow_redirects=False,
    )
    assert edited.status_code == 303
    api = (await client.get(f"/api/v1/placements/{placement_id}")).json()
    assert (api["name"], api["width"], api["height"]) == ("Leaderboard", 728, None)
    assert (await client.post(f"{page}/delete", data={"csrf": csrf})).status_code == 400
    gone = await client.post(
        f"{page}/delete", data={"csrf": csrf, "confirm": "yes"}, follow_redirects=False
    )
    assert gone.status_code == 303
    assert (await client.get(f"/api/v1/placements/{placement_id}")).status_code == 404
    missing = await client.get(page, headers=BROWSER)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert f"placement {placement_id} not found" in missing.text and 'href="/"' in missing.text


async def test_forged_and_signed_out_forms_are_refused(client: Client) -> None:
    banner = await make_banner(client)
    created = await client.post(
        "/placements/new", data={"name": "Side"}, headers=BROWSER, follow_redirects=False
    )
    assert created.status_code == 303 and created.headers["location"].startswith("/login")
    assert (await client.post("/placements/new", data={"name": "Side"})).status_code == 401
    csrf = await sign_in(client)
    forged = await client.post("/placements/new", data={"name": "Side"})
    assert forged.status_code == 403
    stale = await client.post("/placements/new", data={"name": "Side", "csrf": "x" * 43})
    assert stale.status_code == 403
    assert (await client.get("/api/v1/placements")).json()["total"] == 0
    made = await client.post(
        "/placements/new", data={"csrf": csrf, "name": "Side"}, follow_redirects=False
    )
    placement_id = int(made.headers["location"].split("?")[0].rsplit("/", 1)[1])
    link = {"add_banner": str(banner["id"]), "add_weight": "5"}
    assert (await client.post(f"/placements/{placement_id}/banners", data=link)).status_code == 403
    assert (
        await client.post(f"/placements/{placement_id}/delete", data={"confirm": "yes"})
    ).status_code == 403
    links = (await client.get(f"/api/v1/placements/{placement_id}/banners")).json()
    assert links["banners"] == []
    # Read-only visitors see the shares and snippets, with no form.
    await client.post("/logout", data={"csrf": csrf})
    page = (await client.get(f"/placements/{placement_id}")).text
    assert "data-weights-form" not in page and "snip-iframe" in page
    asked = await client.get("/placements/new", headers=BROWSER, follow_redirects=False)
    assert asked.headers["location"] == "/login?next=/placements/new"
