"""Logging set-up. No access log: an access log line would carry the client's IP.

``RateLimitedLog`` keeps a recurring fault from flooding the log: under a database outage
every request fails the same way, and one line per request (thousands a second) buries
the one line an operator needs. It writes the first occurrence at once, then at most one
line per interval carrying how many were held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

_fault_interval = 10.0


def set_fault_interval(seconds: float) -> None:
    """The interval of every ``RateLimitedLog`` built without one (a process-wide setting)."""
    global _fault_interval
    _fault_interval = seconds


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@dataclass(slots=True)
class _Window:
    last: float
    held: int = 0


class RateLimitedLog:
    """One line per ``key`` per ``interval`` seconds, with a count of the lines held back.

    Keys are fixed strings chosen by the caller's code (never request data), so the
    table stays as small as the number of call sites.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._interval = interval
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def log(
        self,
        level: int,
        key: str,
        msg: str,
        *args: object,
        exc_info: BaseException | None = None,
    ) -> bool:
        """Log unless ``key`` was logged within the interval; True when a line was written."""
        now = self._clock()
        interval = self._interval if self._interval is not None else _fault_interval
        window = self._windows.get(key)
        if window is not None and now - window.last < interval:
            window.held += 1
            return False
        held = window.held if window is not None else 0
        self._windows[key] = _Window(last=now)
        if held:
            msg = f"{msg} (and {held} more like it since the last such line)"
        self._log.log(level, msg, *args, exc_info=exc_info)
        return True

    def warning(self, key: str, msg: str, *args: object) -> bool:
        return self.log(logging.WARNING, key, msg, *args)

    def error(
        self, key: str, msg: str, *args: object, exc_info: BaseException | None = None
    ) -> bool:
        return self.log(logging.ERROR, key, msg, *args, exc_info=exc_info)
