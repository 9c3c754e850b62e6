"""MemoryStore: the embedded PosteriorStore, in process memory, saved to a state file.

Same semantics as RedisStore (decay on read and write, clamp at 0, corrupt cells read
as empty), but state is single-process: replicas do not share it. One process owns a state
file (policies.state_lock): another store on the same file (a second ``--workers``
process, a CLI while the proxy runs) reads it at start but never writes it, and says so.

Lifecycle: state is restored from ``state_file`` in the constructor (so offline use needs
no event loop). ``await start()`` logs the single-process notice and, with a state file,
starts a background task saving every ``save_interval_s`` seconds when something changed.
``await close()`` stops it and saves once more. Without ``start()`` nothing is saved
periodically, but ``close()`` and ``save()`` still save. ``load_now``/``apply_now`` are the
synchronous forms for callers without an event loop (the offline evaluator).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from math import isfinite
from pathlib import Path

from policies import decay, state_file
from policies.base import Delta, Evidence, Snapshot, Table
from policies.periodic import Periodic
from policies.state_file import Cell, Cells
from policies.state_lock import StateLock
from policies.store_errors import LOG, WarnLimiter

EMPTY = Evidence()
Dump = dict[str, dict[str, dict[str, Evidence]]]


class MemoryStore:
    """In-process PosteriorStore; counters: ``corrupt_reads``, ``rejected_deltas``."""

    def __init__(
        self,
        *,
        half_life_s: float | None = None,
        clock: Callable[[], float] = time.time,
        state_file: Path | None = None,
        save_interval_s: float = 30.0,
    ) -> None:
        self._half_life = decay.check_half_life(half_life_s)
        self._clock = clock
        self._path = state_file
        self._lock = None if state_file is None else StateLock(state_file)
        self._owner = self._lock is not None and self._lock.acquire()
        self._warn = WarnLimiter()
        self._saver = Periodic(save_interval_s, self._save_if_dirty, "memory-store-save")
        self._dirty = False
        self.corrupt_reads = 0
        self.rejected_deltas = 0
        self._cells: Cells = self._restore()

    @property
    def state_file(self) -> Path | None:
        """Where the state is saved (None: not persisted, or another process owns the file)."""
        return self._path if self._owner else None

    # -- PosteriorStore ------------------------------------------------------------
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
        """Stop the save task and save (errors logged, never raised)."""
        await self._saver.stop()
        if self._owner and self._dirty:
            await self.save()
        if self._lock is not None:
            self._lock.release()
            self._owner = False

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Log the single-process notice; start periodic saving if there is a state file."""
        if self._path is not None and not self._owner:
            LOG.warning(
                "state file %s is owned by another running process: this one read it at start "
                "but will not save (use Redis to share learning across processes)", self._path,
            )
        where = f"saved to {self._path}" if self._owner else "not persisted"
        LOG.info(
            "posterior store: in-process memory, single-process (not shared across replicas), %s",
            where,
        )
        if self._owner:
            self._saver.start()

    async def save(self) -> bool:
        """Write the state file now (off the event loop); whether it succeeded (False
        without a state file or when another process owns it)."""
        if self._path is None or not self._owner:
            return False
        rows = state_file.to_rows(self._cells)
        self._dirty = False
        try:
            await asyncio.to_thread(state_file.write, self._path, rows)
        except OSError as exc:
            self._dirty = True
            self._warn.warn("save", "could not save state file %s: %s", self._path, exc)
            return False
        return True

    # -- synchronous core ----------------------------------------------------------
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
        """Synchronous :meth:`apply`; non-finite deltas are skipped, logged and counted."""
        now = self._clock()
        hl = self._half_life
        for d in deltas:
            ds, df = d.successes, d.failures
            if not (isfinite(ds) and isfinite(df)):
                self._reject(d)
                continue
            row = self._cells.setdefault(d.table, {})
            cell = row.get(d.model)
            if cell is None:
                row[d.model] = Cell(max(0.0, ds), max(0.0, df), now)
                continue
            k = 1.0 if hl is None else decay.factor(now - cell.t, hl)
            cell.s = max(0.0, cell.s * k + ds)
            cell.f = max(0.0, cell.f * k + df)
            cell.t = max(cell.t, now)
            cell.cached = None
        self._dirty = True

    async def dump(self) -> Dump:
        """Every stored table: scope -> context -> model -> evidence decayed to now."""
        now = self._clock()
        out: Dump = {}
        for table, row in self._cells.items():
            ctx = out.setdefault(table.scope, {}).setdefault(table.context, {})
            for model, cell in row.items():
                ctx[model] = Evidence(*decay.decayed(cell.s, cell.f, cell.t, now, self._half_life))
        return out

    # -- internals -------------------------------------------------------------------
    def _evidence(self, cell: Cell | None, now: float) -> Evidence:
        if cell is None:
            return EMPTY
        if self._half_life is not None:
            return Evidence(*decay.decayed(cell.s, cell.f, cell.t, now, self._half_life))
        if cell.cached is None:
            cell.cached = Evidence(cell.s, cell.f)
        return cell.cached

    def _reject(self, d: Delta) -> None:
        self.rejected_deltas += 1
        self._warn.warn("reject", "skipping non-finite delta %r", d)

    def _restore(self) -> Cells:
        if self._path is None:
            return {}
        try:
            cells, bad = state_file.read(self._path)
        except (state_file.CorruptStateFile, OSError, ValueError) as exc:
            if not self._owner:
                LOG.warning("state file %s unusable (%s); starting empty", self._path, exc)
                return {}
            moved = state_file.move_aside(self._path, time.time())
            LOG.warning("state file %s unusable (%s); moved to %s; starting empty", self._path, exc, moved)
            return {}
        if bad:
            self.corrupt_reads += bad
            LOG.warning("state file %s: skipped %d corrupt cells", self._path, bad)
        return cells

    async def _save_if_dirty(self) -> None:
        if self._dirty:
            await self.save()
