"""A banner's conversions as CSV, streamed page by page in constant memory.

The same shape as the clicks' export (``clicks.export``): keyset pages, each on a short
read of its own. Every value is ours (ids, goals of a fixed alphabet, amounts, ISO
codes), so no cell can start a spreadsheet formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Protocol

from bannertrack.conversions.values import ExportedConversion


class ConversionPages(Protocol):
    """What the export reads (``repository.ClickArchive`` has it)."""

    async def export_conversions(
        self,
        banner_id: int,
        start: datetime,
        end: datetime,
        after: tuple[datetime, int] | None,
        limit: int,
    ) -> Sequence[ExportedConversion]: ...


COLUMNS = ("occurred_at", "goal", "value", "currency", "click_id", "placement_id")
PAGE = 2000


def _row(c: ExportedConversion) -> tuple[str, ...]:
    return (
        c.occurred_at.isoformat().replace("+00:00", "Z"),
        c.goal,
        c.value or "",
        c.currency or "",
        c.click_id,
        "" if c.placement_id is None else str(c.placement_id),
    )


async def conversion_csv_chunks(
    archive: ConversionPages, banner_id: int, start: datetime, end: datetime, page: int = PAGE
) -> AsyncIterator[bytes]:
    """The CSV of conversions in ``[start, end)``: a header, then one chunk per page."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield buf.getvalue().encode()
    after: tuple[datetime, int] | None = None
    while True:
        rows = await archive.export_conversions(banner_id, start, end, after, page)
        if not rows:
            return
        buf.seek(0)
        buf.truncate()
        writer.writerows(_row(c) for c in rows)
        yield buf.getvalue().encode()
        if len(rows) < page:
            return
        after = (rows[-1].occurred_at, rows[-1].id)
