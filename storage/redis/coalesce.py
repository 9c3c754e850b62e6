"""Loose writes waiting for Redis, coalesced per key so memory follows distinct keys, not rate.

Two kinds of item wait here (``Rules.size`` tells them apart):

- *sums* (size 0): posterior deltas, counters, index entries. Items with equal keys merge
  into one (``Rules.merge``), so a stall of any length holds one entry per distinct key.
  Up to ``max_keys`` distinct sums are held; an item with a new key beyond that is dropped
  and counted in ``dropped`` (items merging into a held key never are).
- *records* (size > 0 bytes): per-request writes (decision records, request-id lists), or
  sums carrying per-request parts. Equal keys merge too (one entry per key: a sum that
  merges bytes in becomes a record), the merged record counting as the newest; up to
  ``max_bytes`` of them are held, and beyond that the oldest are dropped and counted in
  ``overflowed`` (records) and ``dropped`` (items). A dropped record's sums are kept
  (``Rules.shed``), as a sum.

``len`` is the number of entries held (sums + records).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Generic, Protocol, TypeVar

Item = TypeVar("Item")


class Rules(Protocol[Item]):
    """How one kind of item coalesces."""

    def key(self, item: Item) -> Hashable:
        """Items with equal keys merge."""
        ...

    def merge(self, older: Item, newer: Item) -> Item:
        """One item with the effect of ``older`` then ``newer`` (may update ``older`` in place:
        the buffer owns what it holds)."""
        ...

    def size(self, item: Item) -> int:
        """Bytes a per-request record holds; 0 for a sum."""
        ...

    def shed(self, item: Item) -> Item | None:
        """A record without its per-request parts (a sum, size 0), or None when nothing is
        left (may update ``item`` in place)."""
        ...


class Coalesced(Generic[Item]):
    """Loose items by key: sums bounded by ``max_keys``, records by ``max_bytes``."""

    def __init__(self, rules: Rules[Item], *, max_keys: int, max_bytes: int) -> None:
        if max_keys < 1 or max_bytes < 1:
            raise ValueError(f"buffer limits must be >= 1, got {max_keys} keys, {max_bytes} bytes")
        self.max_keys = max_keys
        self.max_bytes = max_bytes
        self.dropped = 0
        self.overflowed = 0
        self.bytes = 0
        self._rules = rules
        self._sums: dict[Hashable, Item] = {}
        self._records: dict[Hashable, Item] = {}

    def __len__(self) -> int:
        return len(self._sums) + len(self._records)

    def add(self, items: Iterable[Item]) -> int:
        """Merge the newest items in; how many were dropped for want of room."""
        before = self.dropped
        for item in items:
            self._put(item)
        self._trim()
        return self.dropped - before

    def restore(self, items: Sequence[Item]) -> int:
        """Merge items that were not applied back in, as older than everything held (sums
        merge the same in any order; records keep the order restored, then held)."""
        before = self.dropped
        held, self._records, self.bytes = self._records, {}, 0
        for item in items:  # a key held as a record already has its room
            self._put(item, bounded=self._rules.key(item) not in held)
        for item in held.values():
            self._put(item)
        self._trim()
        return self.dropped - before

    def take(self) -> list[Item]:
        """Every held item (sums first, records oldest first); the buffer is empty after."""
        items = [*self._sums.values(), *self._records.values()]
        self._sums.clear()
        self._records.clear()
        self.bytes = 0
        return items

    def _put(self, item: Item, *, bounded: bool = True) -> None:
        """Merge ``item`` in as newer than what its key holds (a new sum beyond ``max_keys``
        is dropped only if ``bounded``)."""
        rules = self._rules
        key = rules.key(item)
        old = self._records.pop(key, None)
        if old is not None:  # merged, it is the newest record
            before = rules.size(old)
            self._records[key] = merged = rules.merge(old, item)
            self.bytes += rules.size(merged) - before
            return
        old = self._sums.get(key)
        if old is not None:
            merged = rules.merge(old, item)
            if size := rules.size(merged):
                del self._sums[key]
                self._records[key] = merged
                self.bytes += size
            else:
                self._sums[key] = merged
            return
        if size := rules.size(item):
            self._records[key] = item
            self.bytes += size
        elif bounded and len(self._sums) >= self.max_keys:
            self.dropped += 1
        else:
            self._sums[key] = item

    def _trim(self) -> None:
        while self.bytes > self.max_bytes and self._records:
            key = next(iter(self._records))
            item = self._records.pop(key)
            self.bytes -= self._rules.size(item)
            self.overflowed += 1
            self.dropped += 1
            rest = self._rules.shed(item)
            if rest is not None:  # its key was held: not a new one
                self._put(rest, bounded=False)
