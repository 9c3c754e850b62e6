"""EvidenceTables: posterior evidence in process memory, a PosteriorStore with no I/O.

Decay on read and write, clamp at 0, non-finite deltas skipped and counted. The embedded
store (storage.embedded.store) adds a state file; the offline evaluator and pure policy
tests use these tables as they are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from math import isfinite

from policies import decay
from policies.base import Delta, Evidence, Snapshot, Table

EMPTY = Evidence()
Dump = dict[str, dict[str, dict[str, Evidence]]]
"""scope -> context -> model -> evidence."""


class Cell:
    """One mutable cell; ``cached`` is the undecayed Evidence, reset on every write."""

    __slots__ = ("cached", "f", "s", "t")

    def __init__(self, s: float, f: float, t: float) -> None:
        self.s, self.f, self.t = s, f, t
        self.cached: Evidence | None = None


Cells = dict[Table, dict[str, Cell]]
"""Per table, per model: the cell."""


class EvidenceTables:
    """In-memory PosteriorStore; counter ``rejected_deltas``; ``changed`` after any write."""

    def __init__(self, *, half_life_s: float | None = None, clock: Callable[[], float] = time.time) -> None:
        self._half_life = decay.check_half_life(half_life_s)
        self._clock = clock
        self._cells: Cells = {}
        self.changed = False
        self.rejected_deltas = 0

    async def load(self, tables: Sequence[Table], models: Sequence[str]) -> Snapshot:
        """Evidence for every (table, model) decayed to now; absent cells are empty."""
        return self.load_now(tables, models)

    async def apply(self, deltas: Sequence[Delta]) -> None:
        """Decay each touched cell to now, add its delta, clamp at 0."""
        self.apply_now(deltas)

    async def ping(self) -> bool:
        """Always True: memory answers."""
        return True

    async def close(self) -> None:
        """Nothing to release."""

    def load_now(self, tables: Sequence[Table], models: Sequence[str]) -> Snapshot:
        """Synchronous :meth:`load`."""
        now = self._clock() if self._half_life is not None else 0.0
        out: dict[Table, dict[str, Evidence]] = {}
        for table in tables:
            row = self._cells.get(table)
            if row is None:
                out[table] = dict.fromkeys(models, EMPTY)
            else:
                out[table] = {m: self._evidence(row.get(m), now) for m in models}
        return out

    def apply_now(self, deltas: Sequence[Delta]) -> None:
        """Synchronous :meth:`apply`; non-finite deltas are skipped and counted."""
        now = self._clock()
        for d in deltas:
            if not (isfinite(d.successes) and isfinite(d.failures)):
                self.rejected_deltas += 1
                self.rejected(d)
                continue
            self._add(self._cells.setdefault(d.table, {}), d, now)
        self.changed = True

    async def dump(self) -> Dump:
        """Every stored table: scope -> context -> model -> evidence decayed to now."""
        now = self._clock()
        out: Dump = {}
        for table, row in self._cells.items():
            ctx = out.setdefault(table.scope, {}).setdefault(table.context, {})
            for model, cell in row.items():
                ctx[model] = Evidence(*decay.decayed(cell.s, cell.f, cell.t, now, self._half_life))
        return out

    def rejected(self, delta: Delta) -> None:
        """Called for each skipped delta (a subclass may log it)."""

    def _add(self, row: dict[str, Cell], d: Delta, now: float) -> None:
        cell = row.get(d.model)
        if cell is None:
            row[d.model] = Cell(max(0.0, d.successes), max(0.0, d.failures), now)
            return
        k = 1.0 if self._half_life is None else decay.factor(now - cell.t, self._half_life)
        cell.s = max(0.0, cell.s * k + d.successes)
        cell.f = max(0.0, cell.f * k + d.failures)
        cell.t = max(cell.t, now)
        cell.cached = None

    def _evidence(self, cell: Cell | None, now: float) -> Evidence:
        if cell is None:
            return EMPTY
        if self._half_life is not None:
            return Evidence(*decay.decayed(cell.s, cell.f, cell.t, now, self._half_life))
        if cell.cached is None:
            cell.cached = Evidence(cell.s, cell.f)
        return cell.cached
