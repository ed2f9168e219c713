"""Whether the database is known to be down: one answer shared by the parts that meet it.

The click writer, the spool's replay and the cache's loads each learn it first in their
own way (a batch that fails or hangs, a probe, a load). Sharing what they learn lets the
others stop waiting at once: a visitor's read answers from the cache's stale copy and a
click goes to the spool without first paying a timeout of its own. It logs one line per
change of state, never one per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("bannertrack.outage")


class DatabaseState:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.down_since: float | None = None
        self.reason = ""
        self.outages = 0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, reason: str) -> None:
        """The database could not answer (refused, gone, timed out)."""
        if self.down_since is None:
            self.down_since = self._clock()
            self.reason = reason
            self.outages += 1
            log.warning("database unavailable (%s): serving from cache and spool", reason)

    def answered(self) -> None:
        """The database answered a read or committed a write."""
        if self.down_since is not None:
            lasted = self._clock() - self.down_since
            self.down_since = None
            log.warning("database answers again after %.1f s", lasted)

    def down_for(self) -> float:
        return 0.0 if self.down_since is None else self._clock() - self.down_since
