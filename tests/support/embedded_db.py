"""Reading what the embedded store saved for a ``server.state_file`` (its SQLite database)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from policies.base import Delta, Snapshot, Table
from storage.embedded.database import Database, database_path
from storage.embedded.sqlite_store import SqliteStore
from storage.protocols import Dump


def saved_store(state_file: Path) -> SqliteStore:
    """A store on the database of ``state_file``, its mirror read now (close it when done)."""
    return SqliteStore(Database(database_path(state_file)))


def integrity(db: Path) -> str:
    """``PRAGMA integrity_check``'s answer for the database file ``db`` ("ok" when sound)."""
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


class ThroughDatabase:
    """A SqliteStore whose every apply is written at once and whose every read comes from a
    fresh store on the same file: the database's own semantics, without the mirror."""

    def __init__(self, path: Path, **options: Any) -> None:
        self._path = path
        self._options = options
        self.writer = SqliteStore(Database(path), **options)

    @property
    def rejected_deltas(self) -> int:
        return self.writer.rejected_deltas

    async def apply(self, deltas: Sequence[Delta]) -> None:
        await self.writer.apply(deltas)
        assert await self.writer.flush()

    async def load(self, tables: Sequence[Table], models: Sequence[str]) -> Snapshot:
        reader = SqliteStore(Database(self._path), **self._options)
        try:
            return await reader.load(tables, models)
        finally:
            reader.database.close()

    async def dump(self) -> Dump:
        reader = SqliteStore(Database(self._path), **self._options)
        try:
            return await reader.dump()
        finally:
            reader.database.close()

    async def ping(self) -> bool:
        return await self.writer.ping()

    async def close(self) -> None:
        await self.writer.close()
