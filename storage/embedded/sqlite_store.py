"""SqliteStore: the embedded PosteriorStore on the shared SQLite database (storage.embedded.database).

Reads never touch the database on the request path: ``load`` answers from an in-process
mirror of the ``posterior`` table (EvidenceTables). ``apply`` lands in the mirror at once and
in a buffer coalesced per cell; every ``flush_interval_s`` a worker thread writes the buffer in
one transaction, each cell as an increment in SQL (decay the stored cell to now, add, clamp
at 0: the MemoryStore and Redis semantics), and in the same transaction reads back every row
any process changed since the last read. So:

- a killed process loses at most its unflushed buffer: ``flush_interval_s`` of outcomes
  (plus the learner's linger); committed rows are never lost on a process kill;
- several processes (``--workers``, ``warm-start`` while serving) share one file: increments
  add up exactly, and each process sees the others' learning within ``flush_interval_s``.

A write that fails (busy beyond the busy timeout, disk full) keeps its cells buffered for
the next tick; the buffer is bounded by the number of distinct cells, not the request rate.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from policies import decay
from policies.base import Delta, Evidence, Table
from policies.evidence_tables import Cell, Cells, EvidenceTables
from storage.embedded.database import Database
from storage.errors import LOG, WarnLimiter
from storage.periodic import Periodic

FLUSH_INTERVAL_S = 0.25
"""Seconds between write-behind transactions (and reads of the other processes' writes)."""

Key = tuple[Table, str]
Row = tuple[str, str, str, object, object, object]
"""A stored cell as read: scope, context, model, successes, failures, t_last."""

SOUND = (
    "(typeof(s) = 'real' AND s >= 0 AND s < 1e308 AND typeof(f) = 'real' AND f >= 0 AND f < 1e308 "
    "AND typeof(t) = 'real' AND abs(t) < 1e308)"
)
"""Whether the stored cell is clean; a corrupt one is reset to empty by the next write."""
UPSERT = f"""
INSERT INTO posterior (scope, context, model, s, f, t, seq)
VALUES (:scope, :context, :model, max(0.0, :ds), max(0.0, :df), :now, :seq)
ON CONFLICT (scope, context, model) DO UPDATE SET
    s = max(0.0, CASE WHEN {SOUND} THEN s * mm_factor(:now - t, :hl) ELSE 0.0 END + :ds),
    f = max(0.0, CASE WHEN {SOUND} THEN f * mm_factor(:now - t, :hl) ELSE 0.0 END + :df),
    t = CASE WHEN {SOUND} THEN max(t, :now) ELSE :now END,
    seq = :seq
"""
CHANGED = "SELECT scope, context, model, s, f, t FROM posterior WHERE seq > ?"
LAST_SEQ = "SELECT value FROM meta WHERE name = 'seq'"


@dataclass(slots=True)
class Pending:
    """Deltas of one cell not yet written: masses as of time ``t``."""

    ds: float
    df: float
    t: float


class SqliteStore(EvidenceTables):
    """EvidenceTables mirrored from and written behind to ``database``; counters
    ``pending`` (cells buffered), ``write_errors``, ``corrupt_reads``, ``rejected_deltas``.

    Owns ``database`` (closed by ``close``). The mirror is filled in the constructor.
    """

    def __init__(
        self,
        database: Database,
        *,
        half_life_s: float | None = None,
        clock: Callable[[], float] = time.time,
        flush_interval_s: float = FLUSH_INTERVAL_S,
    ) -> None:
        super().__init__(half_life_s=half_life_s, clock=clock)
        self.database = database
        self._pending: dict[Key, Pending] = {}
        self._seen = 0
        self._interval_s = flush_interval_s
        self._flushing = asyncio.Lock()
        self._periodic = Periodic(flush_interval_s, self._tick, "sqlite-store-flush")
        self._warn = WarnLimiter()
        self.corrupt_reads = 0
        self.write_errors = 0
        self._merge(*database.read(self._read_changed(0)))

    async def start(self) -> None:
        """Log where the state lives; start the write-behind task."""
        LOG.info(
            "posterior store: embedded SQLite %s (shared by the processes on this machine; "
            "written every %.2f s)", self.database.path, self._interval_s,
        )
        self._periodic.start()

    async def close(self) -> None:
        """Stop the task, write what is buffered, close the database (never raises)."""
        await self._periodic.stop()
        await self.flush()
        self.database.close()

    async def flush(self) -> bool:
        """Write the buffer now and read the other processes' changes; whether it all was."""
        async with self._flushing:
            batch, self._pending = self._pending, {}
            since = self._seen
            try:
                if batch:
                    found = await self.database.write_async(self._writer(batch, self._clock(), since))
                else:
                    found = await self.database.read_async(self._read_changed(since))
            except sqlite3.Error as exc:
                self._keep(batch)
                self.write_errors += 1
                self._warn.warn("write", "could not write state database %s: %s", self.database.path, exc)
                return False
            self._merge(*found)
            return True

    def counters(self) -> dict[str, int]:
        """pending (cells buffered), write_errors, corrupt_reads, rejected_deltas."""
        return {
            "pending": len(self._pending),
            "write_errors": self.write_errors,
            "corrupt_reads": self.corrupt_reads,
            "rejected_deltas": self.rejected_deltas,
        }

    def rejected(self, delta: Delta) -> None:
        self._warn.warn("reject", "skipping non-finite delta %r", delta)

    def _add(self, row: dict[str, Cell], d: Delta, now: float) -> None:
        super()._add(row, d, now)
        key = (d.table, d.model)
        found = self._pending.get(key)
        if found is None:
            self._pending[key] = Pending(d.successes, d.failures, now)
            return
        k = decay.factor(now - found.t, self._half_life)
        found.ds = found.ds * k + d.successes
        found.df = found.df * k + d.failures
        found.t = max(found.t, now)

    def _writer(
        self, batch: dict[Key, Pending], now: float, since: int
    ) -> Callable[[sqlite3.Connection, int], tuple[list[Row], int]]:
        """The transaction: every buffered cell decayed to ``now`` and added, then the changes."""
        hl = self._half_life
        params = [
            {
                "scope": table.scope, "context": table.context, "model": model, "seq": 0,
                "now": now, "hl": hl,
                "ds": p.ds * decay.factor(now - p.t, hl), "df": p.df * decay.factor(now - p.t, hl),
            }
            for (table, model), p in batch.items()
        ]

        def write(conn: sqlite3.Connection, seq: int) -> tuple[list[Row], int]:
            for item in params:
                item["seq"] = seq
            conn.executemany(UPSERT, params)
            return self._read_changed(since)(conn)

        return write

    @staticmethod
    def _read_changed(since: int) -> Callable[[sqlite3.Connection], tuple[list[Row], int]]:
        def read(conn: sqlite3.Connection) -> tuple[list[Row], int]:
            rows = conn.execute(CHANGED, (since,)).fetchall()
            return rows, int(conn.execute(LAST_SEQ).fetchone()[0])

        return read

    def _merge(self, rows: list[Row], seq: int) -> None:
        """Stored rows replace their mirror cells; deltas buffered meanwhile go on top."""
        for scope, context, model, raw_s, raw_f, raw_t in rows:
            table = Table(scope, context)
            cell = self._cell(raw_s, raw_f, raw_t)
            row = self._cells.setdefault(table, {})
            row[model] = cell
            waiting = self._pending.get((table, model))
            if waiting is not None:
                EvidenceTables._add(self, row, Delta(table, model, waiting.ds, waiting.df), waiting.t)
        self._seen = max(self._seen, seq)

    def _cell(self, raw_s: object, raw_f: object, raw_t: object) -> Cell:
        evidence, corrupt = Evidence.clean(raw_s, raw_f)
        t = raw_t if isinstance(raw_t, int | float) and decay.finite(float(raw_t)) else None
        if corrupt or t is None:
            self.corrupt_reads += 1
            return Cell(0.0, 0.0, self._clock())
        return Cell(evidence.successes, evidence.failures, float(t))

    def _keep(self, batch: dict[Key, Pending]) -> None:
        """Put a batch that was not written back in front of what arrived since."""
        for key, new in self._pending.items():
            old = batch.get(key)
            if old is None:
                batch[key] = new
            else:
                k = decay.factor(new.t - old.t, self._half_life)
                batch[key] = Pending(old.ds * k + new.ds, old.df * k + new.df, max(old.t, new.t))
        self._pending = batch

    async def _tick(self) -> None:
        await self.flush()


def import_cells(conn: sqlite3.Connection, seq: int, cells: Cells) -> int:
    """Add ``cells`` (from a JSON state file) to the posterior table in ``conn``'s open
    transaction stamped ``seq``; how many were imported."""
    rows: Iterable[dict[str, object]] = (
        {"scope": table.scope, "context": table.context, "model": model, "ds": c.s, "df": c.f,
         "now": c.t, "hl": None, "seq": seq}
        for table, row in cells.items()
        for model, c in row.items()
    )
    before = conn.total_changes
    conn.executemany(UPSERT, rows)
    return conn.total_changes - before
