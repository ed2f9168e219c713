"""Raw clicks of a banner as CSV, streamed page by page in constant memory.

Pages are read with keyset paging (``ClickArchive.export_page``), each on a short read
of its own, and turned into CSV text as they come, so an export of millions of clicks
holds one page in memory and no database connection while the client reads.

Spreadsheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula, and
user agents and referrers are whatever a client sent; such a value is written with a
leading ``'`` (OWASP's advice for CSV injection), which spreadsheets show as text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime

from bannertrack.models import ExportedClick
from bannertrack.repository import ClickArchive

COLUMNS = (
    "occurred_at",
    "visitor",
    "user_agent",
    "referrer",
    "bot",
    "bot_reason",
    "repeat",
)
PAGE = 2000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str | None) -> str:
    if not value:
        return ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _row(c: ExportedClick) -> tuple[str, ...]:
    return (
        c.occurred_at.isoformat().replace("+00:00", "Z"),
        c.visitor or "",
        _text(c.user_agent),
        _text(c.referrer),
        "true" if c.bot else "false",
        c.bot_reason or "",
        "true" if c.repeat else "false",
    )


async def csv_chunks(
    archive: ClickArchive, banner_id: int, start: datetime, end: datetime, page: int = PAGE
) -> AsyncIterator[bytes]:
    """The CSV of clicks in ``[start, end)``: a header, then one chunk per page."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield buf.getvalue().encode()
    after: tuple[datetime, int] | None = None
    while True:
        rows = await archive.export_page(banner_id, start, end, after, page)
        if not rows:
            return
        buf.seek(0)
        buf.truncate()
        writer.writerows(_row(c) for c in rows)
        yield buf.getvalue().encode()
        if len(rows) < page:
            return
        after = (rows[-1].occurred_at, rows[-1].id)
