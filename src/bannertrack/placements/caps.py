"""The frequency cap: how many times one visitor was served one banner this UTC day.

Counted in memory, per process, under the daily visitor key the repeat rule uses (a
keyed hash of address and user agent under the day's salt: no cookie, no new
identifier), so a serve decides without a database read. What it holds
(docs/counting.md, "Frequency caps"):

- within one worker process: exactly, a visitor is served a capped banner at most
  ``cap_per_day`` times per UTC day;
- across workers and instances: per process; a visitor whose requests land on N
  processes may be served up to N x cap in the worst case (keep-alive connections usually
  keep one browser on one worker);
- a restart forgets the day's counts.

Bounded: at most ``max_entries`` (visitor, banner) pairs a day. When full, a capped banner
is not served to a visitor not yet counted (the cap is never exceeded; uncapped banners
still are). Everything is forgotten when the UTC day changes, as the visitor keys are.
"""

from __future__ import annotations

from datetime import date


class DailyCaps:
    __slots__ = ("_day", "_max", "_seen")

    def __init__(self, max_entries: int = 200_000) -> None:
        self._max = max_entries
        self._day: date | None = None
        self._seen: dict[tuple[str, int], int] = {}

    def _today(self, day: date) -> dict[tuple[str, int], int]:
        if day != self._day:
            self._day = day
            self._seen = {}
        return self._seen

    def under(self, day: date, visitor: str | None, banner_id: int, cap: int) -> bool:
        """Whether the visitor may be served the banner once more today.

        A request without a visitor key (no address) cannot be counted, so a capped
        banner is not served to it.
        """
        if visitor is None:
            return False
        seen = self._today(day)
        count = seen.get((visitor, banner_id))
        if count is None:
            return len(seen) < self._max
        return count < cap

    def count(self, day: date, visitor: str | None, banner_id: int) -> None:
        if visitor is None:
            return
        seen = self._today(day)
        key = (visitor, banner_id)
        if key in seen:
            seen[key] += 1
        elif len(seen) < self._max:
            seen[key] = 1

    def __len__(self) -> int:
        return len(self._seen)
