"""bannertrack's own exception tree; the API maps it to JSON errors in one place.

    BannertrackError
    ├── NotFoundError            the thing asked for does not exist          → 404
    ├── InvalidInputError        well-formed request, impossible values      → 400
    ├── ConflictError            valid, but not possible in this state       → 409
    ├── OutsideWindowError       a conversion too long after its click       → 422
    └── UnavailableError         a dependency cannot answer right now        → 503 + Retry-After
        ├── DatabaseUnavailableError
        ├── TransientError       the database cancelled a write (deadlock): retry it
        └── OverloadedError      the write queue is full (backpressure)

Errors of SQLAlchemy, asyncpg and redis-py are translated into this tree where they
are caught (db/, cache/), so no caller above the repository imports a driver.
"""

from __future__ import annotations

import random


class BannertrackError(Exception):
    code = "error"
    status = 500


class NotFoundError(BannertrackError):
    code = "not_found"
    status = 404


class InvalidInputError(BannertrackError):
    code = "invalid_input"
    status = 400


class ConflictError(BannertrackError):
    """The request is valid but the service is not in a state to do it."""

    code = "conflict"
    status = 409


class OutsideWindowError(BannertrackError):
    """A conversion reported for a click outside the attribution window."""

    code = "outside_window"
    status = 422


class UnavailableError(BannertrackError):
    code = "unavailable"
    status = 503
    retry_after = 1


class DatabaseUnavailableError(UnavailableError):
    code = "database_unavailable"


class TransientError(UnavailableError):
    """The database cancelled a transaction that stored nothing (PostgreSQL's deadlock,
    40P01, or serialization failure, 40001): says nothing about the data, and trying the
    same transaction again is correct. Writers retry it (``clicks/ingest.py``); one that
    gives up answers 503. Not an outage: catch it before ``UnavailableError``."""

    code = "transient"


# A writer that gets ``TransientError`` writes the same transaction again this many times,
# after ``transient_pause``: the other transaction of a deadlock is done by then, so one
# retry nearly always goes through.
TRANSIENT_RETRIES = 3


def transient_pause(attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): a few ms, jittered so two
    writers cancelled by the same deadlock do not meet again in step."""
    return random.uniform(0, 0.01 * attempt)


class OverloadedError(UnavailableError):
    code = "overloaded"
