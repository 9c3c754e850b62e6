"""MemoryStore: the embedded PosteriorStore, in process memory, saved to a state file.

Same semantics as RedisStore, single-process. One process owns a state file
(storage.embedded.state_lock): another store on the same file reads it at start but never
writes it. State is restored in the constructor; ``start()`` begins saving every
``save_interval_s`` when something changed; ``close()`` stops and saves once more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from policies.base import Delta
from policies.evidence_tables import Cells, EvidenceTables
from storage.embedded import state_file
from storage.embedded.state_lock import StateLock
from storage.errors import LOG, WarnLimiter
from storage.periodic import Periodic


class MemoryStore(EvidenceTables):
    """EvidenceTables persisted to ``state_file``; counters ``corrupt_reads``, ``rejected_deltas``."""

    def __init__(
        self,
        *,
        half_life_s: float | None = None,
        clock: Callable[[], float] = time.time,
        state_file: Path | None = None,
        save_interval_s: float = 30.0,
    ) -> None:
        super().__init__(half_life_s=half_life_s, clock=clock)
        self._path = state_file
        self._lock = None if state_file is None else StateLock(state_file)
        self._owner = self._lock is not None and self._lock.acquire()
        self._warn = WarnLimiter()
        self._saver = Periodic(save_interval_s, self._save_if_changed, "memory-store-save")
        self.corrupt_reads = 0
        self._cells = self._restore()

    @property
    def state_file(self) -> Path | None:
        """Where the state is saved (None: not persisted, or another process owns the file)."""
        return self._path if self._owner else None

    async def close(self) -> None:
        """Stop the save task and save (errors logged, never raised)."""
        await self._saver.stop()
        if self._owner and self.changed:
            await self.save()
        if self._lock is not None:
            self._lock.release()
            self._owner = False

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
        self.changed = False
        try:
            await asyncio.to_thread(state_file.write, self._path, rows)
        except OSError as exc:
            self.changed = True
            self._warn.warn("save", "could not save state file %s: %s", self._path, exc)
            return False
        return True

    async def flush(self) -> bool:
        """Save now; whether everything is persisted (True without a state file: nothing to save;
        False when another process owns the file or the write failed)."""
        return True if self._path is None else await self.save()

    def counters(self) -> dict[str, int]:
        """corrupt_reads, rejected_deltas (nothing is buffered: writes land in memory)."""
        return {"corrupt_reads": self.corrupt_reads, "rejected_deltas": self.rejected_deltas}

    def rejected(self, delta: Delta) -> None:
        self._warn.warn("reject", "skipping non-finite delta %r", delta)

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

    async def _save_if_changed(self) -> None:
        if self.changed:
            await self.save()
