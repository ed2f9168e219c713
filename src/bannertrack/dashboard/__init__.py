"""The dashboard: server-rendered pages at ``/`` and ``/banners/{id}``.

Figures come from the ``Repository`` range queries, charts are SVG drawn here with a
table behind each, and a small script from ``static/`` adds what needs the browser
(copy buttons, cache actions with the admin token). Nothing is built or fetched from
elsewhere.
"""

from bannertrack.dashboard.views import cache_history_lifespan, dashboard_router, template_config

__all__ = ["cache_history_lifespan", "dashboard_router", "template_config"]
