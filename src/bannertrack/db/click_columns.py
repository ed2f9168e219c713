"""Raw clicks column by column in numpy arrays, and the filtered figures counted from them.

``ClickColumns`` holds, per click, its time (microseconds since the epoch), its bot and
repeat flags (one byte) and a dictionary code per banner and per dimension (referrer
host, utm_*, country, device, browser, OS, placement): about 29 bytes a click against
several hundred in the database's row and indexes. Arrays grow by half again when full
(amortised appends); dictionaries map a value (``None`` included) to its code and back,
and codes widen from 16 to 32 bits when a column meets its 65,536th value. Dropping rows
forgets the values no live row holds once a column has ``SPARE_VALUES`` more than rows, so
memory follows the rows kept, not every value ever seen.

``counts`` answers every figure of the filtered overview from one mask: the filter's
codes compared column by column, then ``np.bincount`` per series bucket, banner and
dimension. The arithmetic is ``filtered_queries``'s (a bucket is ``floor(seconds /
width)``, breakdowns read whole UTC days, valid = neither flag), so the figures equal a
recount of the raw rows; ``db/click_copy.py`` keeps the columns equal to ``clicks``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from bannertrack.models import NONE_VALUE, ClickFilter, CountKind, Dimension

Key = str | int | None
# The dictionary-encoded columns: the banner, then every dimension a filter may name.
CODED: tuple[str, ...] = (
    "banner",
    "referrer", "utm_source", "utm_medium", "utm_campaign",
    "country", "device", "browser", "os", "placement",
)  # fmt: skip
BOT, REPEAT = 1, 2
# Values a dictionary may hold beyond its live rows before ``keep`` forgets the ones no row
# holds: dropped rows leave their values behind, and a stream of distinct referrers or
# campaigns must not grow a worker's memory past what its row cap allows.
SPARE_VALUES = 65_536
US_PER_S = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Dictionary:
    """Values of one column and their codes."""

    __slots__ = ("code", "values")

    def __init__(self) -> None:
        self.code: dict[Key, int] = {}
        self.values: list[Key] = []

    def encode(self, column: Sequence[Key]) -> list[int]:
        code = self.code
        for value in set(column) - code.keys():
            code[value] = len(self.values)
            self.values.append(value)
        return list(map(code.__getitem__, column))

    def compact(self, codes: npt.NDArray[Any], n: int) -> npt.NDArray[Any]:
        """Forget the values no live row (of ``codes[:n]``) holds; the codes renumbered."""
        used = np.bincount(codes[:n], minlength=len(self.values)) > 0
        renumber = (np.cumsum(used) - 1).astype(codes.dtype)
        self.values = [v for v, u in zip(self.values, used.tolist(), strict=True) if u]
        self.code = {v: i for i, v in enumerate(self.values)}
        return _packed(renumber[codes[:n]], n)


@dataclass(slots=True)
class ClickColumns:
    """Growable columns of clicks; rows ``[0, n)`` are live."""

    n: int = 0
    us: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    flags: npt.NDArray[np.uint8] = field(default_factory=lambda: np.empty(0, np.uint8))
    codes: dict[str, npt.NDArray[Any]] = field(
        default_factory=lambda: {name: np.empty(0, np.uint16) for name in CODED}
    )
    dictionaries: dict[str, Dictionary] = field(
        default_factory=lambda: {name: Dictionary() for name in CODED}
    )

    @property
    def nbytes(self) -> int:
        return self.us.nbytes + self.flags.nbytes + sum(a.nbytes for a in self.codes.values())

    def reserve(self, capacity: int) -> None:
        """Room for ``capacity`` rows without growing again."""
        if capacity > len(self.us):
            self._resize(capacity)

    def _grow(self, need: int) -> None:
        capacity = len(self.us)
        if need <= capacity:
            return
        self._resize(max(need, capacity + capacity // 2, 1024))

    def _resize(self, capacity: int) -> None:
        self.us = _resized(self.us, capacity, self.n)
        self.flags = _resized(self.flags, capacity, self.n)
        self.codes = {k: _resized(a, capacity, self.n) for k, a in self.codes.items()}

    def append(
        self,
        us: Sequence[int],
        flags: Sequence[int],
        coded: dict[str, Sequence[Key]],
    ) -> None:
        """Add clicks: times, flags (``BOT | REPEAT``) and each ``CODED`` column's values."""
        added = len(us)
        if not added:
            return
        self._grow(self.n + added)
        at, stop = self.n, self.n + added
        self.us[at:stop] = us
        self.flags[at:stop] = flags
        for name in CODED:
            codes = self.dictionaries[name].encode(coded[name])
            if len(self.dictionaries[name].values) > np.iinfo(self.codes[name].dtype).max:
                self.codes[name] = self.codes[name].astype(np.uint32)
            self.codes[name][at:stop] = codes
        self.n = stop

    def keep(self, kept: npt.NDArray[np.bool_]) -> None:
        """Keep only the live rows where ``kept`` is true (dropped banners, old days)."""
        n = int(kept.sum())
        self.us = _packed(self.us[: self.n][kept], n)
        self.flags = _packed(self.flags[: self.n][kept], n)
        self.codes = {k: _packed(a[: self.n][kept], n) for k, a in self.codes.items()}
        self.n = n
        for name, dictionary in self.dictionaries.items():
            if len(dictionary.values) > n + SPARE_VALUES:
                self.codes[name] = dictionary.compact(self.codes[name], n)

    def banner_rows(self, banner_ids: Iterable[int]) -> npt.NDArray[np.bool_]:
        """Which live rows belong to one of ``banner_ids``."""
        codes = [self.dictionaries["banner"].code[b] for b in banner_ids]
        wanted = np.zeros(len(self.dictionaries["banner"].values), np.bool_)
        wanted[codes] = True
        result: npt.NDArray[np.bool_] = wanted[self.codes["banner"][: self.n]]
        return result


def _resized(a: npt.NDArray[Any], capacity: int, n: int) -> npt.NDArray[Any]:
    grown = np.empty(capacity, a.dtype)
    grown[:n] = a[:n]
    return grown


def _packed(a: npt.NDArray[Any], n: int) -> npt.NDArray[Any]:
    # A little room, so the next catch-up does not copy everything again at once.
    return _resized(a, n + n // 8 + 1024, n)


@dataclass(frozen=True, slots=True)
class Counts:
    """The raw figures of one filtered read, before ``filtered_queries`` shapes them."""

    totals: tuple[int, int, int, int]  # all, valid, bot, repeat in [start, end)
    series: dict[int, tuple[int, int, int]]  # bucket start (epoch s): valid, bot, repeat
    per_banner: dict[int, int]  # in [start, end), by ``count``
    per_value: tuple[dict[str, int], ...]  # per dimension asked, in [lo, hi), by ``count``


def _matching(cols: ClickColumns, f: ClickFilter) -> npt.NDArray[np.intp] | None:
    """Rows of ``f`` (all times); None when some value was never seen: no row matches."""
    wanted: list[tuple[str, Key]] = [] if f.banner_id is None else [("banner", f.banner_id)]
    wanted += [(by, None if v == NONE_VALUE else v) for by, v in f.values]
    mask: npt.NDArray[np.bool_] | None = None
    for name, key in wanted:
        code = cols.dictionaries[name].code.get(key)
        if code is None:
            return None
        hit = cols.codes[name][: cols.n] == code
        mask = hit if mask is None else mask & hit
    if mask is None:
        return np.arange(cols.n)
    return np.flatnonzero(mask)


def us_of(value: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch."""
    return (value - _EPOCH) // timedelta(microseconds=1)


def counts(
    cols: ClickColumns,
    f: ClickFilter,
    span: tuple[datetime, datetime],
    days: tuple[datetime, datetime] | None = None,
    *,
    width_s: int | None = None,
    dims: Sequence[Dimension] = (),
    count: CountKind = "valid",
    banners: bool = False,
) -> Counts:
    """Totals (and the series by ``width_s``, per-banner counts if ``banners``) over
    ``span``, breakdowns by ``dims`` over ``days``, for the clicks of ``f``."""
    rows = _matching(cols, f)
    if rows is None or not len(rows):
        return Counts((0, 0, 0, 0), {}, {}, tuple({} for _ in dims))
    us = cols.us[rows]
    flags = cols.flags[rows]
    valid = flags == 0
    inside = (us >= us_of(span[0])) & (us < us_of(span[1]))
    bot, rep = (flags & BOT) != 0, (flags & REPEAT) != 0
    totals = (
        int(inside.sum()),
        int((inside & valid).sum()),
        int((inside & bot).sum()),
        int((inside & rep).sum()),
    )
    series: dict[int, tuple[int, int, int]] = {}
    if totals[0] and width_s is not None:
        bucket = us[inside] // (width_s * US_PER_S)
        first = int(bucket.min())
        size = int(bucket.max()) - first + 1
        at = bucket - first
        per = [np.bincount(at, minlength=size)]
        per += [np.bincount(at[w[inside]], minlength=size) for w in (valid, bot, rep)]
        for i in np.flatnonzero(per[0]):
            series[(first + int(i)) * width_s] = (int(per[1][i]), int(per[2][i]), int(per[3][i]))
    chosen = valid if count == "valid" else np.ones(len(rows), np.bool_)
    banner_dict = cols.dictionaries["banner"].values
    per_banner: dict[int, int] = {}
    if banners:
        at = cols.codes["banner"][rows[inside & chosen]]
        found = np.bincount(at, minlength=len(banner_dict))
        for code in np.flatnonzero(found):
            per_banner[int(banner_dict[code])] = int(found[code])  # type: ignore[arg-type]
    per_value = []
    if dims:
        assert days is not None
        in_days = rows[(us >= us_of(days[0])) & (us < us_of(days[1])) & chosen]
        for by in dims:
            values = cols.dictionaries[by].values
            found = np.bincount(cols.codes[by][in_days], minlength=len(values))
            per_value.append(
                {
                    NONE_VALUE if values[c] is None else str(values[c]): int(found[c])
                    for c in np.flatnonzero(found)
                }
            )
    return Counts(totals, series, per_banner, tuple(per_value))
