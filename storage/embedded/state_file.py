"""The embedded store's state file: JSON rows, written atomically, read defensively.

Format: ``{"format": "model-manager-state", "version": 1, "cells":
[[scope, context, model, successes, failures, t_last], ...]}``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import orjson

from policies.base import Evidence, Table
from policies.evidence_tables import Cell, Cells
from storage.errors import LOG

FORMAT = "model-manager-state"
VERSION = 1


class CorruptStateFile(Exception):
    """The file exists but is not a state file this version can read."""


def to_rows(cells: Cells) -> list[tuple[str, str, str, float, float, float]]:
    """A copy of ``cells`` as plain rows (cheap; taken on the event loop)."""
    return [
        (table.scope, table.context, model, c.s, c.f, c.t)
        for table, row in cells.items()
        for model, c in row.items()
    ]


def write(path: Path, rows: list[tuple[str, str, str, float, float, float]]) -> None:
    """Replace ``path`` atomically with ``rows`` (see :func:`write_atomically`)."""
    write_atomically(path, orjson.dumps({"format": FORMAT, "version": VERSION, "cells": rows}))


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data``: temp file in the same dir, fsync, os.replace. On any
    failure the old file is untouched and the temp file removed."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read(path: Path) -> tuple[Cells, int]:
    """Cells stored in ``path`` and how many rows were corrupt (skipped).

    A missing file is empty state. Raises CorruptStateFile (or OSError) when the
    file as a whole cannot be used.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}, 0
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CorruptStateFile(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise CorruptStateFile("not a version 1 model-manager state file")
    rows = doc.get("cells")
    if not isinstance(rows, list):
        raise CorruptStateFile("'cells' is not a list")
    return _cells(rows)


def _cells(rows: list[object]) -> tuple[Cells, int]:
    cells: Cells = {}
    bad = 0
    for row in rows:
        cell = _cell(row)
        if cell is None:
            bad += 1
            continue
        table, model, values = cell
        cells.setdefault(table, {})[model] = values
    return cells, bad


def _cell(row: object) -> tuple[Table, str, Cell] | None:
    if not isinstance(row, list) or len(row) != 6:
        return None
    scope, context, model, s, f, t = row
    if not (isinstance(scope, str) and isinstance(context, str) and isinstance(model, str)):
        return None
    evidence, corrupt = Evidence.clean(s, f)
    if corrupt or s is None or f is None or not _finite_number(t):
        return None
    return Table(scope, context), model, Cell(evidence.successes, evidence.failures, float(t))


def _finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and (value - value == 0)


def move_aside(path: Path, stamp: float) -> Path | None:
    """Rename an unusable state file to ``<name>.corrupt-<stamp>``; None if that failed."""
    target = path.with_name(f"{path.name}.corrupt-{int(stamp)}")
    try:
        os.replace(path, target)
    except OSError as exc:
        LOG.warning("could not move corrupt state file %s aside: %s", path, exc)
        return None
    return target
