"""Small pure helpers for combining (discounted) evidence masses as (successes, failures) pairs."""

from __future__ import annotations

from policies.base import Evidence

NO_EVIDENCE = Evidence()

Pair = tuple[float, float]
"""(successes, failures) as plain floats: the policy's hot path builds no objects."""


def capped_pair(mass: Pair, cap: float) -> Pair:
    """``mass`` scaled down so its total is at most ``cap`` (mean unchanged)."""
    s, f = mass
    total = s + f
    if total <= cap or total <= 0.0:
        return mass
    shrink = cap / total
    return s * shrink, f * shrink


def minus_pair(whole: Evidence, part: Evidence) -> Pair:
    """``whole`` without ``part`` (evidence recorded elsewhere), each mass floored at 0."""
    return max(whole.successes - part.successes, 0.0), max(whole.failures - part.failures, 0.0)


def clipped_reward(reward: float) -> float:
    """``reward`` clipped into [0, 1]; NaN counts as 0 (a failure)."""
    if not reward >= 0.0:
        return 0.0
    return min(reward, 1.0)
