"""RedisStore's read caches: the last good read per table (for outages), whole recent
snapshots reused for a few milliseconds, and reads in flight shared by the requests that ask
for the same snapshot meanwhile (so a burst of requests shares one read)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence

from policies.base import Snapshot, Table

FRESH_LIMIT = 4096
"""Distinct (tables, models) snapshots kept by FreshReads before it starts over."""

Raw = tuple[float, float, float]
"""A clean cell as read: ``(successes, failures, t_last)`` (not yet decayed)."""


class ReadCache:
    """The last good read of each table's cells. Once more than ``limit`` cells are kept,
    the least recently read tables are forgotten (the one just read always stays)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"cache limit must be >= 1, got {limit}")
        self._limit = limit
        self._tables: OrderedDict[Table, dict[str, Raw]] = OrderedDict()
        self._cells = 0

    def __len__(self) -> int:
        """Cells kept."""
        return self._cells

    def put(self, table: Table, row: Mapping[str, Raw]) -> None:
        """Remember ``row`` (model -> cell) as just read from ``table``."""
        cells = self._tables.get(table)
        if cells is None:
            cells = self._tables[table] = {}
        else:
            self._tables.move_to_end(table)
        before = len(cells)
        cells.update(row)
        self._cells += len(cells) - before
        while self._cells > self._limit and len(self._tables) > 1:
            _, dropped = self._tables.popitem(last=False)
            self._cells -= len(dropped)

    def get_all(self, tables: Sequence[Table], models: Sequence[str]) -> dict[Table, list[Raw]] | None:
        """Every requested cell per table, or None if any one of them is unknown."""
        out: dict[Table, list[Raw]] = {}
        for table in tables:
            cells = self._tables.get(table)
            if cells is None or any(m not in cells for m in models):
                return None
            out[table] = [cells[m] for m in models]
        return out


class FreshReads:
    """Snapshots younger than ``ttl_s`` (monotonic seconds) answer repeated reads; 0 = off."""

    def __init__(self, ttl_s: float, monotonic: Callable[[], float], limit: int = FRESH_LIMIT) -> None:
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._limit = limit
        self._reads: dict[tuple[tuple[Table, ...], tuple[str, ...]], tuple[float, Snapshot]] = {}
        self.hits = 0

    def get(self, tables: Sequence[Table], models: Sequence[str]) -> Snapshot | None:
        if self._ttl_s <= 0:
            return None
        found = self._reads.get((tuple(tables), tuple(models)))
        if found is None or self._monotonic() - found[0] >= self._ttl_s:
            return None
        self.hits += 1
        return found[1]

    def put(self, tables: Sequence[Table], models: Sequence[str], snapshot: Snapshot) -> Snapshot:
        """Remember ``snapshot`` as read now; returns it."""
        if self._ttl_s > 0:
            if len(self._reads) >= self._limit:
                self._reads.clear()
            self._reads[(tuple(tables), tuple(models))] = (self._monotonic(), snapshot)
        return snapshot


ReadKey = tuple[tuple[Table, ...], tuple[str, ...]]


class SharedReads:
    """Reads in flight, one per (tables, models): a request asking for a snapshot already
    being read awaits that read instead of sending its own. The first asker reads in its own
    task (no task of its own per read); a waiter that is cancelled (its client left) cancels
    nobody else's answer: waiters of a reader that left read again themselves. A read's
    exception reaches every waiter. ``shared`` counts the reads saved."""

    def __init__(self) -> None:
        self._reads: dict[ReadKey, _InFlight] = {}
        self.shared = 0

    async def get(self, key: ReadKey, read: Callable[[], Awaitable[Snapshot]]) -> Snapshot:
        while (flight := self._reads.get(key)) is not None:
            self.shared += 1
            answer = await flight.wait()
            if answer is not None:
                return answer
            self.shared -= 1  # its reader left before answering: read anew
        return await self._lead(key, read)

    async def _lead(self, key: ReadKey, read: Callable[[], Awaitable[Snapshot]]) -> Snapshot:
        flight = _InFlight()
        self._reads[key] = flight
        try:
            snapshot = await read()
        except asyncio.CancelledError:
            flight.end(None)
            raise
        except BaseException as exc:
            flight.fail(exc)
            raise
        finally:
            if self._reads.get(key) is flight:
                del self._reads[key]
        flight.end(snapshot)
        return snapshot


class _InFlight:
    """One read in progress; its waiters' future exists only once someone waits."""

    __slots__ = ("_future",)

    def __init__(self) -> None:
        self._future: asyncio.Future[Snapshot | None] | None = None

    async def wait(self) -> Snapshot | None:
        """The read's snapshot, None when its reader left first; raises the read's exception.
        Cancelling a waiter leaves the read and the other waiters alone."""
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
        return await asyncio.shield(self._future)

    def end(self, snapshot: Snapshot | None) -> None:
        if self._future is not None:
            self._future.set_result(snapshot)

    def fail(self, exc: BaseException) -> None:
        if self._future is not None:
            self._future.set_exception(exc)
            self._future.exception()  # retrieved: every waiter may have left
