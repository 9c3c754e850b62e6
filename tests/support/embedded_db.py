"""Reading what the embedded store saved for a ``server.state_file`` (its SQLite database)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from storage.embedded.database import Database, database_path
from storage.embedded.sqlite_store import SqliteStore


def saved_store(state_file: Path) -> SqliteStore:
    """A store on the database of ``state_file``, its mirror read now (close it when done)."""
    return SqliteStore(Database(database_path(state_file)))


def integrity(db: Path) -> str:
    """``PRAGMA integrity_check``'s answer for the database file ``db`` ("ok" when sound)."""
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
