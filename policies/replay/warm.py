"""Warm-start data for a replay: logged outcomes, kept apart from the replayed prompts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policies.replay.data import OutcomeTable, ReplayDataError, replay_reward
from policies.replay.logs import LoggedRow, load_logged
from policies.warm_start import LoggedOutcome


@dataclass(frozen=True, slots=True)
class WarmStart:
    """Where the logged outcomes come from and how much they may weigh."""

    data: Path
    split: str | None = None
    strength: float = 100.0

    def __post_init__(self) -> None:
        """Raise ValueError for a strength that is not > 0."""
        if not self.strength > 0.0:
            raise ValueError(f"warm-start strength must be > 0, got {self.strength}")


def load_warm_rows(
    warm: WarmStart, *, agent_column: str | None, evaluated: OutcomeTable, data: Path
) -> list[LoggedRow]:
    """The warm-start rows; ReplayDataError when they come from the evaluated file
    and share prompts with the replayed rows (the replay would test on its training data)."""
    rows = load_logged(warm.data, agent_column=agent_column, split=warm.split)
    if _same_file(warm.data, data):
        replayed = {p.prompt_id for p in evaluated.prompts}
        shared = {row.prompt_id for row in rows} & replayed
        if shared:
            raise ReplayDataError(
                f"{warm.data}: the warm-start rows share {len(shared)} prompt(s) with the "
                "replayed rows; use disjoint splits (e.g. --warm-split train --split test)"
            )
    return rows


def warm_outcomes(
    rows: Sequence[LoggedRow], models: Sequence[str], cost_weight: float
) -> list[LoggedOutcome]:
    """Rows of the replayed models, rewarded as the replay rewards:
    ``clip(quality - cost_weight * cost, 0, 1)`` (unknown cost counts as 0)."""
    known = set(models)
    return [
        LoggedOutcome(
            row.agent, row.prompt, row.model, replay_reward(row.quality, row.cost_usd or 0.0, cost_weight)
        )
        for row in rows
        if row.model in known
    ]


def warm_summary(
    warm_start: WarmStart | None, rows: Sequence[LoggedRow], models: Sequence[str], cells: int
) -> dict[str, Any] | None:
    """The report's ``warm_start`` entry (None without a warm start)."""
    if warm_start is None:
        return None
    known = set(models)
    return {
        "data": str(warm_start.data),
        "split": warm_start.split,
        "strength": warm_start.strength,
        "rows": sum(1 for row in rows if row.model in known),
        "rows_of_other_models": sum(1 for row in rows if row.model not in known),
        "cells": cells,
    }


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.resolve() == second.resolve() or first.samefile(second)
    except OSError:
        return False
