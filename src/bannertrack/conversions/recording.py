"""Reporting a conversion: check the report, then store it once per (click id, goal).

The store is the ``Repository`` (the cached one in the service: it invalidates the
banner's figures after a conversion that counted). This module decides nothing about
SQL; the database adapter decides nothing about what a valid report is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bannertrack.conversions.validation import checked
from bannertrack.conversions.values import ConversionIn, ConversionReport, Recorded
from bannertrack.timeutil import utcnow


class ConversionStore(Protocol):
    async def record_conversion(self, data: ConversionIn, window: timedelta) -> Recorded: ...


@dataclass(frozen=True, slots=True)
class ConversionRecorder:
    """What ``POST /api/v1/conversions`` needs, built once at start-up."""

    store: ConversionStore
    window: timedelta
    clock: Callable[[], datetime] = field(default=utcnow)

    async def report(self, report: ConversionReport) -> Recorded:
        """Raises ``InvalidInputError`` (400), ``NotFoundError`` (404, unknown click id) or
        ``OutsideWindowError`` (422)."""
        return await self.store.record_conversion(checked(report, self.clock()), self.window)
