"""Click ids: 128 random bits, prefixed by the click's own time, and read back.

A click id is URL-safe base64 (32 characters, no padding) of 24 bytes: the click's
``occurred_at`` as 8 big-endian bytes of microseconds since the Unix epoch, then 16
bytes from the OS's CSPRNG. Nothing in it comes from the visitor's address or agent.

Why the time. A conversion names its click by id alone, and an index on 128-bit random
keys is the most expensive kind a click batch can update: every key lands on another
B-tree leaf, so a batch of N clicks dirties about N index pages (SQLite writes each whole
page to the WAL; PostgreSQL the same after a checkpoint), which cost the link 15-40 % on
SQLite (docs/benchmarks.md, "Conversions"). With the click's time inside the id, a
conversion finds its click through the time index every click already updates
(``ix_clicks_occurred``: ``occurred_at = t AND click_id = id``), and a click id adds no
index entry at all. The time it reveals is the click's, to the microsecond: the site the
visitor lands on sees that moment anyway.

Ids stored before this form (migration 0012) are 22 characters of
``secrets.token_urlsafe(16)``; ``click_time`` answers ``None`` for them and the lookup
reads the partial index that still holds them (``ux_clicks_legacy_click_id``).
"""

from __future__ import annotations

import base64
import binascii
import os
from datetime import UTC, datetime, timedelta

RANDOM_BYTES = 16  # 128 bits from the CSPRNG: the id's secret part
_TIME_BYTES = 8
LENGTH = 4 * (_TIME_BYTES + RANDOM_BYTES) // 3  # 32 characters, no padding
LEGACY_LENGTH = 22  # secrets.token_urlsafe(16), the form before migration 0012
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


# The CSPRNG's bytes drawn 256 ids at a time: one getrandom call per click was half of
# an id's cost on the link. ``list.pop`` is atomic, so two threads never share a slice;
# a forked worker starts with an empty pool, so no two processes share one either.
_POOL_IDS = 256
_pool: list[bytes] = []
os.register_at_fork(after_in_child=_pool.clear)


def _random_part() -> bytes:
    try:
        return _pool.pop()
    except IndexError:
        chunk = os.urandom(RANDOM_BYTES * _POOL_IDS)
        _pool.extend(chunk[i : i + RANDOM_BYTES] for i in range(0, len(chunk), RANDOM_BYTES))
        return _pool.pop()


def new_click_id(occurred_at: datetime) -> str:
    """A fresh click id for a click at ``occurred_at`` (an aware datetime)."""
    us = (occurred_at - _EPOCH) // _MICROSECOND
    raw = us.to_bytes(_TIME_BYTES, "big") + _random_part()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def click_time(click_id: str) -> datetime | None:
    """The ``occurred_at`` of the click ``click_id`` names, or ``None`` when the id is not
    of this form (a legacy id, or one no link handed out)."""
    if len(click_id) != LENGTH:
        return None
    try:
        raw = base64.urlsafe_b64decode(click_id.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError):
        return None
    us = int.from_bytes(raw[:_TIME_BYTES], "big")
    try:
        return _EPOCH + us * _MICROSECOND
    except OverflowError:  # a made-up id: no click has a time past datetime's range
        return None
