"""What the placement pages show: a linked banner's row with its status, the share each
weight gives, and the snippets a site pastes to embed the placement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape

from bannertrack.models import Banner, Placement, PlacementBanner

# The JSON serve rendered with the site's own markup; 204 (no banner eligible) shows nothing.
_FETCH = """<div id="bt-placement-{id}"></div>
<script>
fetch("{url}")
  .then((r) => (r.status === 200 ? r.json() : null))
  .then((b) => {
    if (!b) return;
    const a = Object.assign(document.createElement("a"), { href: b.click_url });
    const img = document.createElement("img");
    Object.assign(img, { src: b.image_url, alt: "Advertisement" });
    if (b.width) img.width = b.width;
    if (b.height) img.height = b.height;
    a.append(img);
    document.getElementById("bt-placement-{id}").append(a);
  });
</script>"""


@dataclass(frozen=True, slots=True)
class LinkRow:
    """A linked banner as the page shows it: its weight and the share that weight gives."""

    banner_id: int
    banner: Banner | None  # None: deleted meanwhile
    status: str
    weight: int
    share: float  # weight / sum of the linked banners' weights, 0..1
    served: int  # impressions the placement served of it in the last SERVED_DAYS
    served_share: float | None  # of all the placement's impressions then; None: none


def banner_status(banner: Banner | None, now: datetime) -> str:
    if banner is None:
        return "missing"
    if not banner.active:
        return "paused"
    if banner.starts_at is not None and banner.starts_at > now:
        return "scheduled"
    if banner.ends_at is not None and banner.ends_at <= now:
        return "ended"
    return "active"


def shares(links: tuple[PlacementBanner, ...]) -> list[float]:
    """Each weight over the sum of all the linked banners' weights."""
    total = sum(link.weight for link in links)
    return [link.weight / total if total else 0.0 for link in links]


def snippets(base: str, placement: Placement) -> dict[str, str]:
    """What a site pastes: the iframe, the JSON address, and a fetch that renders it."""
    serve = f"{base}/p/{placement.id}"
    size = "".join(
        f' {name}="{value}"'
        for name, value in (("width", placement.width), ("height", placement.height))
        if value is not None
    )
    title = escape(placement.name, quote=True)
    iframe = (
        f'<iframe src="{serve}"{size} title="{title}" scrolling="no" '
        f'style="border:0;overflow:hidden" loading="lazy"></iframe>'
    )
    json_url = f"{serve}?format=json"
    fetch = _FETCH.replace("{id}", str(placement.id)).replace("{url}", json_url)
    return {"iframe": iframe, "json_url": json_url, "fetch": fetch}
