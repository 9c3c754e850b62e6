"""The embedded database: one SQLite file in WAL mode, shared by every process on the machine.

``Database`` owns one connection used from worker threads (``asyncio.to_thread``), one at a
time (a lock). Settings: ``journal_mode=WAL`` (readers never block the writer),
``synchronous=NORMAL`` (a commit is in the WAL when it returns: it survives a killed process;
a power cut may lose the commits since the last checkpoint, never the file's consistency),
``busy_timeout`` (another process's write waits instead of failing). Writes run in
``BEGIN IMMEDIATE`` transactions so a read-modify-write sees no other writer in between.

Every write transaction takes the next number of the ``meta.seq`` counter and stamps the
rows it touches with it; commits are serialised by SQLite, so a reader that has seen seq N
has seen every row of every commit up to N (``rows_since``).

A file that is not a usable database is moved aside (``<name>.corrupt-<stamp>``) and a
fresh one created.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from policies import decay
from storage.errors import LOG

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another process's transaction before failing (then retried)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('format', 'model-manager-state'), ('version', 1),
    ('seq', 0);
CREATE TABLE IF NOT EXISTS posterior (
    scope TEXT NOT NULL, context TEXT NOT NULL, model TEXT NOT NULL,
    s REAL NOT NULL, f REAL NOT NULL, t REAL NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (scope, context, model)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS posterior_seq ON posterior (seq);
CREATE TABLE IF NOT EXISTS stats (
    agent TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (agent, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workflow (
    id TEXT PRIMARY KEY, expires REAL NOT NULL, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
    finished_at TEXT, outcome TEXT, score TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS workflow_expires ON workflow (expires);
CREATE TABLE IF NOT EXISTS workflow_count (
    workflow TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (workflow, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS workflow_request (
    n INTEGER PRIMARY KEY AUTOINCREMENT, workflow TEXT NOT NULL, request_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS workflow_request_of ON workflow_request (workflow, n);
CREATE TABLE IF NOT EXISTS recent (
    scope TEXT NOT NULL, workflow TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (scope, workflow)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS recent_at ON recent (scope, at);
CREATE TABLE IF NOT EXISTS decision (
    request_id TEXT PRIMARY KEY, expires REAL NOT NULL, fields TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS decision_expires ON decision (expires);
CREATE TABLE IF NOT EXISTS timeline (
    agent TEXT NOT NULL, minute INTEGER NOT NULL, name TEXT NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (agent, minute, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS timeline_minute ON timeline (minute);
CREATE TABLE IF NOT EXISTS recent_decision (
    n INTEGER PRIMARY KEY AUTOINCREMENT, agent TEXT NOT NULL, entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS recent_decision_of ON recent_decision (agent, n);
"""

DATABASE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def database_path(state_file: Path) -> Path:
    """The database of ``server.state_file``: the file itself when it ends in .db, .sqlite or
    .sqlite3; else the same name with ``.db`` in place of ``.json`` (or appended)."""
    if state_file.suffix in DATABASE_SUFFIXES:
        return state_file
    if state_file.suffix == ".json":
        return state_file.with_suffix(".db")
    return state_file.with_name(state_file.name + ".db")


class Database:
    """The open database at ``path`` (created with its schema if missing)."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._conn = _connect(path, busy_timeout_ms)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise
            moved = _move_aside(path)
            LOG.warning("state database %s unusable (%s); moved to %s; starting empty", path, exc, moved)
            self._conn = _connect(path, busy_timeout_ms)

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` in a read transaction (one consistent snapshot)."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                return fn(self._conn)
            finally:
                self._conn.execute("COMMIT")

    def write(self, fn: Callable[[sqlite3.Connection, int], T]) -> T:
        """``fn(connection, seq)`` in one ``BEGIN IMMEDIATE`` transaction stamped ``seq``;
        committed when ``fn`` returns, rolled back when it raises."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                seq = self._conn.execute(
                    "UPDATE meta SET value = value + 1 WHERE name = 'seq' RETURNING value"
                ).fetchone()[0]
                result = fn(self._conn, int(seq))
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return result

    async def read_async(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """:meth:`read` in a worker thread."""
        return await asyncio.to_thread(self.read, fn)

    async def write_async(self, fn: Callable[[sqlite3.Connection, int], T]) -> T:
        """:meth:`write` in a worker thread."""
        return await asyncio.to_thread(self.write, fn)

    def close(self) -> None:
        """Close the connection (the last one to close checkpoints the WAL)."""
        with self._lock:
            self._conn.close()


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL").fetchone()
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.create_function("mm_factor", 2, decay.factor, deterministic=True)
        conn.executescript(SCHEMA)
        fmt = conn.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
        if fmt is None or fmt[0] != "model-manager-state":
            raise sqlite3.DatabaseError("not a model-manager state database")
    except BaseException:
        conn.close()
        raise
    return conn


def _move_aside(path: Path) -> Path | None:
    target = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    try:
        os.replace(path, target)
    except OSError as exc:
        LOG.warning("could not move state database %s aside: %s", path, exc)
        return None
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(OSError):
            os.replace(path.with_name(path.name + suffix), target.with_name(target.name + suffix))
    return target
