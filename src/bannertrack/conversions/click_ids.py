"""Click ids: 144 random bits behind the 10 ms their click fell in, and read back.

A click id is URL-safe base64 (36 characters, no padding) of 27 bytes: a form byte (1),
the start of a window of time as 8 big-endian bytes of microseconds since the Unix
epoch, then 18 bytes from the OS's CSPRNG. The click's ``occurred_at`` lies in
``[start, start + 10 ms)``. Nothing in it comes from the visitor's address or agent.

Why the time. A conversion names its click by id alone, and an index on random keys is
the most expensive kind a click batch can update: every key lands on another B-tree
leaf, so a batch of N clicks dirties about N index pages (SQLite writes each whole page
to the WAL; PostgreSQL the same after a checkpoint), which cost the link 15-40 % on
SQLite (docs/benchmarks.md, "Conversions"). With the time inside the id, a conversion
finds its click through the time index every click already updates
(``ix_clicks_occurred``: ``occurred_at`` in the window and ``click_id = id``, reading at
most the clicks of those 10 ms), and a click id adds no index entry at all.

Why a window rather than the click's own microsecond (the form before this one). Ids are
made on the tracking link, the service's hottest request, where every step runs cold
between requests and costs several times its ``timeit`` figure: the microsecond form's
datetime arithmetic, byte packing and base64 a click cost the link several per cent.
Here a window's 12 characters are made once per 10 ms and the random 24 ahead in bulk,
so a click's id is a comparison, a ``pop`` and a concatenation (docs/benchmarks.md, "A
click id's cost"). The time it reveals is coarser than the click's own.

Ids of the older forms stay valid: 32 characters (the click's microsecond as 8 bytes,
then 16 random bytes) are found by their time, as a window of one microsecond; 22
characters (``secrets.token_urlsafe(16)``, before migration 0012) have no time:
``click_window`` answers ``None`` and the lookup reads the partial index that holds them
(``ux_clicks_legacy_click_id``).
"""

from __future__ import annotations

import base64
import binascii
import os
from datetime import UTC, datetime, timedelta

RANDOM_BYTES = 18  # 144 bits from the CSPRNG: the id's secret part
_FORM = 1  # the first byte: which form the rest has (a window of WINDOW)
_TIME_BYTES = 8
LENGTH = 4 * (1 + _TIME_BYTES + RANDOM_BYTES) // 3  # 36 characters, no padding
MICROSECOND_LENGTH = 32  # the form before: the click's microsecond, 16 random bytes
LEGACY_LENGTH = 22  # secrets.token_urlsafe(16), the form before migration 0012
WINDOW = timedelta(milliseconds=10)
_RANDOM_CHARS = 4 * RANDOM_BYTES // 3  # 24: 18 bytes fill whole base64 groups
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)
_LAST_START = _LATEST - WINDOW  # a window starting later would end past datetime's range
_MICROSECOND = timedelta(microseconds=1)

# The random parts, drawn and encoded 256 at a time: a getrandom call and a base64 pass
# a click were most of an id's cost. ``list.pop`` is atomic, so two threads never share
# one; a forked worker starts with an empty pool, so no two processes share one either.
_POOL_IDS = 256
_pool: list[str] = []
os.register_at_fork(after_in_child=_pool.clear)
# The window ids are being made in, [start, end), and its 12 characters; replaced whole.
_window: tuple[datetime, datetime, str] = (_EPOCH, _EPOCH, "")


def new_click_id(occurred_at: datetime) -> str:
    """A fresh click id for a click at ``occurred_at`` (an aware datetime, 1970 or later)."""
    start, end, head = _window
    if not start <= occurred_at < end:
        head = _open_window(occurred_at)
    try:
        return head + _pool.pop()
    except IndexError:
        return head + _refill()


def _open_window(start: datetime) -> str:
    """A window starting at ``start`` (the first click in it): its 12 characters."""
    global _window
    us = (start - _EPOCH) // _MICROSECOND
    head = _encode(bytes([_FORM]) + us.to_bytes(_TIME_BYTES, "big"))
    if start < _LAST_START:  # (the last 10 ms datetime holds are not kept: made anew)
        _window = (start, start + WINDOW, head)
    return head


def _refill() -> str:
    text = _encode(os.urandom(RANDOM_BYTES * _POOL_IDS))
    _pool.extend([text[i : i + _RANDOM_CHARS] for i in range(0, len(text), _RANDOM_CHARS)])
    return _pool.pop()


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def click_window(click_id: str) -> tuple[datetime, datetime] | None:
    """The times the click ``click_id`` names can have: ``start <= occurred_at <= end``;
    ``None`` for an id without a time (a legacy one, or one no link handed out).

    The window is closed at both ends: one a little wider than the maker's finds the
    same click (the id must match too), and a microsecond id's is that microsecond.
    """
    if len(click_id) not in (LENGTH, MICROSECOND_LENGTH):
        return None
    try:
        raw = base64.b64decode(click_id.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None
    if len(raw) == MICROSECOND_LENGTH * 3 // 4:
        time, width = raw[:_TIME_BYTES], timedelta(0)
    elif raw[0] == _FORM:
        time, width = raw[1 : 1 + _TIME_BYTES], WINDOW
    else:
        return None
    try:
        start = _EPOCH + int.from_bytes(time, "big") * _MICROSECOND
    except OverflowError:  # a made-up id: no click has a time past datetime's range
        return None
    return start, (start + width if start <= _LATEST - width else _LATEST)


def in_window(click_id: str, occurred_at: datetime) -> bool:
    """Whether a click at ``occurred_at`` may be the one ``click_id`` names by its time
    (an id without a time names its click by itself)."""
    window = click_window(click_id)
    return window is None or window[0] <= occurred_at <= window[1]
