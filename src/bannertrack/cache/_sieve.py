"""SIEVE eviction (Zhang et al., NSDI 2024) over the cache's own entries.

SIEVE keeps one FIFO queue: new entries enter at the head, and never move on a hit; a hit
only sets ``visited``. To make room, a hand walks from the tail towards the head,
clearing ``visited`` on the entries it passes, and evicts the first entry it finds
unvisited. We chose it because a hit costs one attribute write (no list surgery, so the
hit path needs no lock for the policy) and it matches or beats LRU on web traces.

One addition to the paper: the hand also takes the first *expired* entry it meets, visited
or not, since an expired entry can never be hit again.

All methods must be called with the cache lock held; only ``visited`` is written
without it (by the hit path), which is harmless: a lost ``True`` costs at most one
premature eviction.
"""

from __future__ import annotations

from bannertrack.cache._entry import Entry


class SieveQueue:
    """The FIFO queue and the hand; it owns the links, not the key index."""

    __slots__ = ("hand", "head", "size", "tail")

    def __init__(self) -> None:
        self.head: Entry | None = None  # newest
        self.tail: Entry | None = None  # oldest
        self.hand: Entry | None = None  # next candidate; None means "start at the tail"
        self.size = 0

    def push(self, entry: Entry) -> None:
        """Insert at the head: a new entry has to survive one pass of the hand."""
        entry.older = self.head
        entry.newer = None
        if self.head is not None:
            self.head.newer = entry
        else:
            self.tail = entry
        self.head = entry
        self.size += 1

    def remove(self, entry: Entry) -> None:
        """Unlink an entry (delete, expiry, eviction), keeping the hand on a live entry."""
        if self.hand is entry:
            self.hand = entry.newer
        newer, older = entry.newer, entry.older
        if newer is not None:
            newer.older = older
        else:
            self.head = older
        if older is not None:
            older.newer = newer
        else:
            self.tail = newer
        entry.newer = entry.older = None
        self.size -= 1

    def victim(self, now: float) -> Entry:
        """Move the hand to the entry to evict and unlink it; the queue must not be empty.

        Amortised O(1): each step either clears a ``visited`` bit that a hit set, or stops.
        """
        entry = self.hand if self.hand is not None else self.tail
        if entry is None:
            raise LookupError("victim() on an empty SIEVE queue")
        while entry.visited and entry.expires > now:
            entry.visited = False
            entry = entry.newer if entry.newer is not None else self.tail
            assert entry is not None  # the queue is non-empty, so the tail exists
        self.hand = entry.newer
        self.remove(entry)
        return entry

    def clear(self) -> None:
        """Drop every link so cleared entries do not keep each other alive."""
        entry = self.head
        while entry is not None:
            older = entry.older
            entry.newer = entry.older = None
            entry = older
        self.head = self.tail = self.hand = None
        self.size = 0

    def keys_oldest_first(self) -> list[str]:
        """The queue order, for tests and invariant checks."""
        keys: list[str] = []
        entry = self.tail
        while entry is not None:
            keys.append(entry.key)
            entry = entry.newer
        return keys
