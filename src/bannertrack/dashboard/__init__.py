"""The dashboard: server-rendered pages for a marketer (figures, filters, banners, live)
and for an admin (``/ops``), behind a session from ``/login``.

Figures come from the ``Repository`` range queries (unfiltered) or the ``Explorer``
(filtered, banner table, live); charts are SVG drawn here with a table behind each, and a
small script from ``static/`` adds what needs the browser (copy buttons, the range form,
refreshing the live view and the cache panel). Nothing is built or fetched from elsewhere.
"""

from bannertrack.dashboard.errors import error_page, wants_page
from bannertrack.dashboard.routes import dashboard_router
from bannertrack.dashboard.session import SESSION_STORE, session_store
from bannertrack.dashboard.views import cache_history_lifespan, template_config

__all__ = [
    "SESSION_STORE",
    "cache_history_lifespan",
    "dashboard_router",
    "error_page",
    "session_store",
    "template_config",
    "wants_page",
]
