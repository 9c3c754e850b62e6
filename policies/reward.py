"""Reward of one attempt in [0, 1] from its outcome and an agent's weights.

For a failed attempt the reward is 0. For a success::

    latency_score = target / (target + x), a smooth score, 1 when x = 0, 1/2 at target;
                    the mean of the TTFT score and the total-latency score when the
                    time to first token is known, else the total-latency score alone
    cost_score    = cost_target / (cost_target + cost); 1 (neutral) when cost is unknown
    reward = (wq * quality + wl * latency_score + wc * cost_score) / (wq + wl + wc)

Quality is clipped to [0, 1] (NaN counts as 0). Negative times or costs count as 0;
NaN or infinite ones score 0 (unknown TTFT is skipped; unknown cost is neutral).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Observation:
    """What happened on one attempt."""

    success: bool
    quality: float = 1.0
    latency_s: float = 0.0
    ttft_s: float | None = None
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class RewardWeights:
    """Relative weights of quality, latency and cost, and the targets they score against."""

    quality: float = 0.6
    latency: float = 0.2
    cost: float = 0.2
    latency_target_s: float = 10.0
    ttft_target_s: float = 2.0
    cost_target_usd: float = 0.01

    def __post_init__(self) -> None:
        """Raise ValueError for negative or non-finite weights, all-zero weights, bad targets."""
        weights = {"quality": self.quality, "latency": self.latency, "cost": self.cost}
        for name, value in weights.items():
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"reward weight {name} must be a finite number >= 0, got {value}")
        if sum(weights.values()) <= 0.0:
            raise ValueError("reward weights quality, latency and cost must not all be 0")
        for name in ("latency_target_s", "ttft_target_s", "cost_target_usd"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"reward {name} must be a finite number > 0, got {value}")

    @property
    def total(self) -> float:
        return self.quality + self.latency + self.cost


def reward(observation: Observation, weights: RewardWeights) -> float:
    """The reward in [0, 1] of ``observation`` (see the module docstring for the formula)."""
    if not observation.success:
        return 0.0
    parts = (
        weights.quality * _unit(observation.quality)
        + weights.latency * latency_score(observation, weights)
        + weights.cost * _cost_score(observation.cost_usd, weights.cost_target_usd)
    )
    return min(max(parts / weights.total, 0.0), 1.0)


def logged_reward(
    quality: float, latency_s: float | None, cost_usd: float | None, weights: RewardWeights
) -> float | None:
    """The reward of a logged successful call whose latency may be unknown.

    With the latency known this is ``reward``; without it the latency term is left out
    and the others keep their relative weights. None when nothing else is weighted
    (the log says nothing this agent scores).
    """
    if latency_s is not None:
        return reward(Observation(True, quality, latency_s, None, cost_usd), weights)
    known = weights.quality + weights.cost
    if known <= 0.0:
        return None
    parts = weights.quality * _unit(quality) + weights.cost * _cost_score(
        cost_usd, weights.cost_target_usd
    )
    return min(max(parts / known, 0.0), 1.0)


def latency_score(observation: Observation, weights: RewardWeights) -> float:
    """Mean of the TTFT and total-latency scores (total alone when TTFT is unknown)."""
    total = smooth_score(observation.latency_s, weights.latency_target_s)
    if observation.ttft_s is None:
        return total
    return (total + smooth_score(observation.ttft_s, weights.ttft_target_s)) / 2.0


def smooth_score(value: float, target: float) -> float:
    """``target / (target + value)``: 1 at 0, 1/2 at target; NaN or infinity score 0."""
    if not math.isfinite(value):
        return 0.0
    return target / (target + max(value, 0.0))


def _cost_score(cost: float | None, target: float) -> float:
    return 1.0 if cost is None else smooth_score(cost, target)


def _unit(value: float) -> float:
    if not value >= 0.0:
        return 0.0
    return min(value, 1.0)
