"""Deltas waiting to be written, and merging deltas into one change per cell."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

from policies import decay
from policies.base import Delta, Table

Pending = tuple[Delta, float]
"""A delta and the time it was produced (it decays from then until it is written)."""

Merged = dict[Table, dict[str, tuple[float, float]]]
"""Per table, per model: the summed (successes, failures) change, in first-seen order."""


def merge(items: Iterable[Pending], now: float, half_life_s: float | None) -> Merged:
    """Sum the deltas per cell, each decayed from its own time to ``now``."""
    out: Merged = {}
    for delta, t in items:
        k = decay.factor(now - t, half_life_s)
        row = out.setdefault(delta.table, {})
        s, f = row.get(delta.model, (0.0, 0.0))
        row[delta.model] = (s + k * delta.successes, f + k * delta.failures)
    return out


def unmerge(merged: Merged, now: float) -> list[Pending]:
    """Merged changes back as pending deltas stamped ``now`` (one per cell)."""
    return [
        (Delta(table, model, s, f), now)
        for table, row in merged.items()
        for model, (s, f) in row.items()
    ]


class PendingBuffer:
    """A bounded FIFO of pending deltas; when full the oldest are dropped and counted."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"buffer limit must be >= 1, got {limit}")
        self.limit = limit
        self.dropped = 0
        self._items: deque[Pending] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def extend(self, items: Iterable[Pending]) -> int:
        """Append newest items; how many old ones were dropped to make room."""
        self._items.extend(items)
        return self._trim()

    def take(self) -> list[Pending]:
        """Remove and return everything, oldest first."""
        items = list(self._items)
        self._items.clear()
        return items

    def restore(self, items: Sequence[Pending]) -> int:
        """Put items that failed to write back in front of newer ones; drops counted."""
        self._items.extendleft(reversed(items))
        return self._trim()

    def _trim(self) -> int:
        excess = len(self._items) - self.limit
        for _ in range(max(0, excess)):
            self._items.popleft()
        dropped = max(0, excess)
        self.dropped += dropped
        return dropped
