"""Read a long prompt x model outcome CSV (schema: the shared data README).

Each prompt must have exactly one row per model; quality and cost must be numbers
(an empty cost means unknown and counts as 0). Every problem raises ReplayDataError
with a message naming the file, and the row or prompt at fault.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REQUIRED = ("prompt_id", "prompt", "model", "quality")
DEFAULT_AGENT = "default"


class ReplayDataError(ValueError):
    """The outcome table cannot be replayed; the message says why."""


@dataclass(frozen=True, slots=True)
class PromptOutcomes:
    """One prompt: its agent, task, text, and quality and cost per model (table order).

    ``task`` is the file's task column (the agent when there is none): it lets the
    report compare a one-agent replay with the best fixed model per task.
    """

    prompt_id: str
    agent: str
    prompt: str
    quality: tuple[float, ...]
    cost: tuple[float, ...]
    task: str = ""


@dataclass(frozen=True, slots=True)
class OutcomeTable:
    """Every prompt of a file (after the split filter) over the same sorted models."""

    models: tuple[str, ...]
    prompts: tuple[PromptOutcomes, ...]


@dataclass(slots=True)
class _Builder:
    agent: str
    task: str
    prompt: str
    quality: dict[str, float]
    cost: dict[str, float]


def load_table(
    path: Path, *, agent_column: str | None = "task", split: str | None = None
) -> OutcomeTable:
    """The outcomes in ``path``; agent from ``agent_column`` (None: one agent "default")."""
    with csv_rows(path) as rows:
        builders = _read(path, rows, agent_column, split)
    if not builders:
        raise ReplayDataError(f"{path}: no rows" + (f" in split {split!r}" if split else ""))
    return _assemble(path, builders)


@contextmanager
def csv_rows(path: Path) -> Iterator[csv.DictReader[str]]:
    """The rows of ``path`` as dicts; ReplayDataError for a file that cannot be opened or
    is not UTF-8 CSV (also when raised while the caller reads)."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as error:
        raise ReplayDataError(f"{path}: cannot open: {error.strerror or error}") from error
    with handle:
        try:
            yield csv.DictReader(handle)
        except (UnicodeDecodeError, csv.Error) as error:
            raise ReplayDataError(f"{path}: not a readable UTF-8 CSV file: {error}") from error


def _read(
    path: Path, rows: csv.DictReader[str], agent_column: str | None, split: str | None
) -> dict[str, _Builder]:
    check_header(path, rows, agent_column, split)
    return _collect(path, rows, agent_column, split)


def check_header(
    path: Path, rows: csv.DictReader[str], agent_column: str | None, split: str | None
) -> None:
    """ReplayDataError for a file without a header, or without a column the read needs."""
    if not rows.fieldnames:
        raise ReplayDataError(f"{path}: empty file (no header row)")
    needed = (*REQUIRED, *(c for c in (agent_column,) if c), *(("split",) if split else ()))
    missing = [column for column in needed if column not in set(rows.fieldnames)]
    if missing:
        raise ReplayDataError(f"{path}: missing column(s) {', '.join(missing)}")


def agent_of(row: Mapping[str, str | None], agent_column: str | None) -> str:
    """The row's agent: its ``agent_column`` value, "default" when empty or without a column."""
    return (row.get(agent_column) or DEFAULT_AGENT) if agent_column else DEFAULT_AGENT


def replay_reward(quality: float, cost: float, cost_weight: float) -> float:
    """What a replay scores an outcome: ``clip(quality - cost_weight * cost, 0, 1)``."""
    return min(max(quality - cost_weight * cost, 0.0), 1.0)


def _collect(
    path: Path, rows: csv.DictReader[str], agent_column: str | None, split: str | None
) -> dict[str, _Builder]:
    builders: dict[str, _Builder] = {}
    for line, row in enumerate(rows, start=2):
        if split is not None and row.get("split") != split:
            continue
        key = row["prompt_id"] or ""
        agent = agent_of(row, agent_column)
        task = row.get("task") or agent
        builder = builders.setdefault(key, _Builder(agent, task, row["prompt"] or "", {}, {}))
        _add_row(path, line, row, builder)
    return builders


def _add_row(path: Path, line: int, row: Mapping[str, str | None], builder: _Builder) -> None:
    model = row["model"] or ""
    if not model:
        raise ReplayDataError(f"{path}: line {line}: empty model name")
    if model in builder.quality:
        raise ReplayDataError(f"{path}: line {line}: second row for prompt "
                              f"{row['prompt_id']!r} and model {model!r}")
    builder.quality[model] = number(path, line, "quality", row.get("quality"), required=True)
    builder.cost[model] = number(path, line, "cost_usd", row.get("cost_usd"), required=False)


def number(path: Path, line: int, column: str, text: str | None, *, required: bool) -> float:
    if not text or not text.strip():
        if required:
            raise ReplayDataError(f"{path}: line {line}: empty {column}")
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise ReplayDataError(f"{path}: line {line}: {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ReplayDataError(f"{path}: line {line}: {column} {text!r} is not finite")
    return value


def _assemble(path: Path, builders: Mapping[str, _Builder]) -> OutcomeTable:
    models = tuple(sorted({m for b in builders.values() for m in b.quality}))
    prompts = []
    for prompt_id, b in builders.items():
        missing = [m for m in models if m not in b.quality]
        if missing:
            raise ReplayDataError(
                f"{path}: prompt {prompt_id!r} lacks rows for model(s) {', '.join(missing)}"
            )
        quality = tuple(b.quality[m] for m in models)
        cost = tuple(b.cost[m] for m in models)
        prompts.append(PromptOutcomes(prompt_id, b.agent, b.prompt, quality, cost, b.task))
    return OutcomeTable(models, tuple(prompts))
