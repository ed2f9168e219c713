"""The seam between the service and its storage, and the narrow doors beside it.

``protocol``: the ``Repository`` every request path reads and writes through (the SQL
one, or the cached one in front of it). ``doors``: the few-method protocols a consumer
that needs something else is handed instead (export, housekeeping, placements, the
cache endpoints, the dashboard, the health check, the spool's replay).
"""

from bannertrack.repository.doors import (
    CacheAdmin,
    ClickArchive,
    Explorer,
    Housekeeping,
    PlacementStore,
    ReplayTarget,
    StorageProbe,
)
from bannertrack.repository.protocol import Notify, NotifyingClicks, Repository

__all__ = [
    "CacheAdmin",
    "ClickArchive",
    "Explorer",
    "Housekeeping",
    "Notify",
    "NotifyingClicks",
    "PlacementStore",
    "ReplayTarget",
    "Repository",
    "StorageProbe",
]
