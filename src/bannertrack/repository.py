"""The seam between the service and its storage.

``SqlRepository`` implements this against the database; ``CachedRepository`` implements
it by wrapping another ``Repository``. The HTTP layer and the CLI only see this protocol,
so they never know whether a cache answered.

Lookups of one thing return ``None`` when it does not exist rather than raising: a
cached ``None`` is a legitimate (negative) cache entry, and the caller decides whether
absence is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from bannertrack.models import (
    Banner,
    BannerCreate,
    BannerPage,
    BannerUpdate,
    BannerWithStats,
    ClickIn,
    ClickStats,
    Interval,
    RecordedClick,
    Series,
    TopBanners,
)


class Repository(Protocol):
    async def create_banner(self, data: BannerCreate) -> Banner: ...

    async def get_banner(self, banner_id: int) -> Banner | None: ...

    async def list_banners(self, offset: int, limit: int) -> BannerPage: ...

    async def update_banner(self, banner_id: int, data: BannerUpdate) -> Banner | None: ...

    async def delete_banner(self, banner_id: int) -> bool: ...

    async def record_clicks(self, clicks: Sequence[ClickIn]) -> list[RecordedClick | None]:
        """Store a batch in one transaction; ``None`` marks a click on a missing banner.

        When this returns, every non-``None`` click is committed (durable).
        """
        ...

    async def click_stats(self, banner_id: int) -> ClickStats | None: ...

    async def banner_with_stats(self, banner_id: int) -> BannerWithStats | None: ...

    async def top_banners(self, limit: int) -> TopBanners: ...

    async def click_series(
        self, banner_id: int, start: datetime, end: datetime, interval: Interval
    ) -> Series | None: ...

    async def ping(self) -> None:
        """Raise ``DatabaseUnavailableError`` when the storage cannot answer."""
        ...

    async def close(self) -> None: ...
