"""Bounded last-good-read cache: the raw cell RedisStore last read, per (table, model)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from policies.base import Table

Raw = tuple[float, float, float]
"""A clean cell as read: ``(successes, failures, t_last)`` (not yet decayed)."""


class ReadCache:
    """Least-recently-read cells beyond ``limit`` are forgotten."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"cache limit must be >= 1, got {limit}")
        self._limit = limit
        self._cells: OrderedDict[tuple[Table, str], Raw] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cells)

    def put(self, table: Table, model: str, raw: Raw) -> None:
        """Remember the cell as just read."""
        key = (table, model)
        self._cells[key] = raw
        self._cells.move_to_end(key)
        if len(self._cells) > self._limit:
            self._cells.popitem(last=False)

    def get_all(
        self, tables: Sequence[Table], models: Sequence[str]
    ) -> dict[Table, list[Raw]] | None:
        """Every requested cell per table, or None if any one of them is unknown."""
        out: dict[Table, list[Raw]] = {}
        for table in tables:
            row = [self._cells.get((table, m)) for m in models]
            if any(raw is None for raw in row):
                return None
            out[table] = [raw for raw in row if raw is not None]
        return out
