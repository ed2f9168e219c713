"""``/live``: the last 30 minutes, refreshed every few seconds without a reload.

The page is whole without a script; the script fetches ``/live/fragment`` (the same
section, rendered here) every ``REFRESH`` seconds while the tab is visible and swaps it
in. Polling, not server-sent events: one short read per tab and interval, nothing held
open per viewer, and it passes every proxy. The figures come from ``click_minutes`` and
the newest raw clicks (``Explorer.live``), so a click shows once its batch is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request, get
from litestar.response import Template

from bannertrack.bootstrap.web import Injected
from bannertrack.dashboard.charts import nice_ceiling
from bannertrack.dashboard.filters import country_name
from bannertrack.dashboard.web import HEADERS, page_context, read_guard
from bannertrack.models.explore import LiveView
from bannertrack.repository import Explorer

MINUTES = 30
REFRESH = 3  # seconds
W, H, PAD = 600, 120, 4


@dataclass(frozen=True, slots=True)
class LiveBar:
    x: float
    y: float
    width: float
    height: float
    label: str
    valid: int
    total: int


def _bars(view: LiveView) -> tuple[tuple[LiveBar, ...], int]:
    top = nice_ceiling(max((m.total_clicks for m in view.minutes), default=0))
    slot = W / max(len(view.minutes), 1)
    bars = []
    for i, m in enumerate(view.minutes):
        height = (H - PAD) * m.valid_clicks / top
        bars.append(
            LiveBar(
                x=round(i * slot + 1, 2),
                y=round(H - height, 2),
                width=round(max(slot - 2, 1.0), 2),
                height=round(height, 2),
                label=m.minute.strftime("%H:%M"),
                valid=m.valid_clicks,
                total=m.total_clicks,
            )
        )
    return tuple(bars), top


async def _context(request: Request[Any, Any, Any], explorer: Explorer) -> dict[str, Any]:
    view = await explorer.live(MINUTES)
    bars, top = _bars(view)
    return {
        **page_context(request),
        "view": view,
        "bars": bars,
        "top": top,
        "size": (W, H),
        "refresh": REFRESH,
        "valid_total": sum(m.valid_clicks for m in view.minutes),
        "country_name": country_name,
    }


@get("/live", guards=[read_guard], include_in_schema=False)
async def live_page(request: Request[Any, Any, Any], explorer: Injected[Explorer]) -> Template:
    return Template("live.html.j2", context=await _context(request, explorer), headers=HEADERS)


@get("/live/fragment", guards=[read_guard], include_in_schema=False)
async def live_fragment(request: Request[Any, Any, Any], explorer: Injected[Explorer]) -> Template:
    return Template(
        "_live_panel.html.j2", context=await _context(request, explorer), headers=HEADERS
    )
