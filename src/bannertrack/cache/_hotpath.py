"""The hit path, the one piece of code whose speed is the product.

Per hit: one dict lookup, one clock read, one ``visited`` write (SIEVE) and one atomic
counter increment (``next()`` on an ``itertools.count``, see ``_stats``); no lock, no
string work. ``bench/cache_micro.py`` measures it against other caches.
"""

from __future__ import annotations

from collections.abc import Callable

from bannertrack.cache._entry import Entry


def make_get(
    entries: dict[str, Entry], clock: Callable[[], float], slow: Callable[[str], object]
) -> Callable[[str], object]:
    """Build the hit path as a closure: cells are cheaper to read than attributes of self.

    Measured on the benchmark machine the closure saves ~20 ns of a ~190 ns hit.
    ``entries.get`` rather than ``try: entries[key]``: the ``try`` form is ~12 ns faster
    per hit but raising ``KeyError`` adds ~300 ns per miss, a loss below ~96% hits.
    """

    def get(key: str) -> object:
        entry = entries.get(key)
        if entry is None:
            return slow(key)
        if entry.expires > clock():
            entry.visited = True
            next(entry.hits)
            return entry.value
        return slow(key)

    return get
