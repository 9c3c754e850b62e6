"""First start on the SQLite database: import the JSON state files that came before it.

The posterior file (``server.state_file``, e.g. ``state.json``) and its tracking file
(``state.tracking.json``) are added to the database in one transaction, recorded in its
``meta`` table under the files' SHA-256 (so a second process starting at the same moment, or
the same files copied back later, import nothing), then renamed ``<name>.migrated``. An
unusable JSON file is moved aside (``<name>.corrupt-<stamp>``) and logged; the database starts
without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import time
from pathlib import Path

from policies.evidence_tables import Cells
from proxy.tracking import tracking_file
from proxy.tracking.memory_state import TrackingState
from proxy.tracking.sqlite_backend import import_state
from storage.embedded import state_file
from storage.embedded.database import Database
from storage.embedded.sqlite_store import import_cells

log = logging.getLogger("model_manager.store")

MIGRATED = ".migrated"


def migrate_json(
    database: Database, json_path: Path, *, now: float, retention_s: float, ttl_s: float
) -> bool:
    """Import ``json_path`` and its tracking file into ``database`` if they exist and were not
    imported before; whether anything was imported."""
    tracking_path = tracking_file.path_for(json_path)
    if not json_path.exists() and not tracking_path.exists():
        return False
    cells = _posteriors(json_path)
    tracked = _tracking(tracking_path, now=now, retention_s=retention_s, ttl_s=ttl_s)
    if cells is None and tracked is None:
        return False
    key = f"migrated:{_digest(json_path, tracking_path)}"

    def run(conn: sqlite3.Connection, seq: int) -> tuple[int, int] | None:
        if conn.execute("SELECT 1 FROM meta WHERE name = ?", (key,)).fetchone() is not None:
            return None
        conn.execute("INSERT INTO meta (name, value) VALUES (?, ?)", (key, now))
        return (import_cells(conn, seq, cells or {}), import_state(conn, tracked or TrackingState()))

    counts = database.write(run)
    for path, used in ((json_path, cells is not None), (tracking_path, tracked is not None)):
        if used:
            with contextlib.suppress(OSError):
                os.replace(path, path.with_name(path.name + MIGRATED))
    if counts is None:
        return False
    log.info("state: imported %s (%d cells) and its tracking file (%d entries) into %s; the JSON files "
             "are renamed *%s", json_path, counts[0], counts[1], database.path, MIGRATED)
    return True


def _digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with contextlib.suppress(OSError):
            digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _posteriors(path: Path) -> Cells | None:
    if not path.exists():
        return None
    try:
        cells, bad = state_file.read(path)
    except (state_file.CorruptStateFile, OSError, ValueError) as exc:
        moved = state_file.move_aside(path, time.time())
        log.warning("state file %s unusable (%s): not imported, moved to %s", path, exc, moved)
        return None
    if bad:
        log.warning("state file %s: skipped %d corrupt cells", path, bad)
    return cells


def _tracking(path: Path, *, now: float, retention_s: float, ttl_s: float) -> TrackingState | None:
    if not path.exists():
        return None
    try:
        state, bad = tracking_file.read(path, now=now, retention_s=retention_s, decision_ttl_s=ttl_s)
    except (state_file.CorruptStateFile, OSError, ValueError) as exc:
        moved = state_file.move_aside(path, time.time())
        log.warning("tracking file %s unusable (%s): not imported, moved to %s", path, exc, moved)
        return None
    if bad:
        log.warning("tracking file %s: skipped %d corrupt entries", path, bad)
    return state
