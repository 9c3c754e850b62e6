"""Read logged outcomes row by row: the outcome-table schema, but any models per prompt.

A replay needs every model's outcome for every prompt; a log of past traffic has one (or
a few) per request. Columns ``prompt_id``, ``prompt``, ``model`` and ``quality`` are
required; ``cost_usd`` and ``latency_s`` are optional (empty means unknown: None).
Every problem raises ReplayDataError naming the file and the line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from policies.replay.data import ReplayDataError, agent_of, check_header, csv_rows, number


@dataclass(frozen=True, slots=True)
class LoggedRow:
    """One logged call."""

    prompt_id: str
    agent: str
    prompt: str
    model: str
    quality: float
    cost_usd: float | None
    latency_s: float | None


def load_logged(
    path: Path, *, agent_column: str | None = "task", split: str | None = None
) -> list[LoggedRow]:
    """The rows of ``path`` (only ``split``'s when given); agent from ``agent_column``
    (None: every row under "default"). ReplayDataError for a bad or empty file."""
    with csv_rows(path) as reader:
        rows = list(_rows(path, reader, agent_column, split))
    if not rows:
        raise ReplayDataError(f"{path}: no rows" + (f" in split {split!r}" if split else ""))
    return rows


def _rows(
    path: Path, reader: csv.DictReader[str], agent_column: str | None, split: str | None
) -> Iterator[LoggedRow]:
    check_header(path, reader, agent_column, split)
    for line, row in enumerate(reader, start=2):
        if split is not None and row.get("split") != split:
            continue
        model = row["model"] or ""
        if not model:
            raise ReplayDataError(f"{path}: line {line}: empty model name")
        yield LoggedRow(
            prompt_id=row["prompt_id"] or "",
            agent=agent_of(row, agent_column),
            prompt=row["prompt"] or "",
            model=model,
            quality=number(path, line, "quality", row.get("quality"), required=True),
            cost_usd=_optional(path, line, "cost_usd", row.get("cost_usd")),
            latency_s=_optional(path, line, "latency_s", row.get("latency_s")),
        )


def _optional(path: Path, line: int, column: str, text: str | None) -> float | None:
    if not text or not text.strip():
        return None
    return number(path, line, column, text, required=True)
