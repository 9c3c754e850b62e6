"""Exponential forgetting of evidence, shared by every store.

A cell holds ``(successes, failures, t_last)``. Bringing it to ``now`` multiplies
both masses by ``0.5 ** ((now - t_last) / half_life_s)``. Time never runs backwards
for a cell: when ``now < t_last`` (clock skew between replicas) the factor is 1.
"""

from __future__ import annotations

import math


def check_half_life(half_life_s: float | None) -> float | None:
    """The half-life to use: None or 0 mean no decay; negative or non-finite raise."""
    if half_life_s is None or half_life_s == 0:
        return None
    if not math.isfinite(half_life_s) or half_life_s < 0:
        raise ValueError(f"half_life_s must be a finite number >= 0, got {half_life_s!r}")
    return float(half_life_s)


def factor(elapsed_s: float, half_life_s: float | None) -> float:
    """Weight left on evidence that is ``elapsed_s`` seconds old (1.0 without decay)."""
    if half_life_s is None or elapsed_s <= 0:
        return 1.0
    return math.pow(0.5, elapsed_s / half_life_s)


def decayed(
    successes: float, failures: float, t_last: float, now: float, half_life_s: float | None
) -> tuple[float, float]:
    """The cell's masses as seen at ``now``."""
    k = factor(now - t_last, half_life_s)
    return successes * k, failures * k


def finite(*values: float) -> bool:
    """Whether every value is a finite float (deltas must be, to be applied)."""
    return all(math.isfinite(v) for v in values)
