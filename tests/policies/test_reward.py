"""The reward formula and its weight validation."""

from __future__ import annotations

import itertools
import math

import pytest

from policies.reward import Observation, RewardWeights, reward, smooth_score

QUALITY_ONLY = RewardWeights(quality=1.0, latency=0.0, cost=0.0)
EVEN = RewardWeights(
    quality=1.0, latency=1.0, cost=1.0,
    latency_target_s=10.0, ttft_target_s=2.0, cost_target_usd=0.01,
)


@pytest.mark.parametrize(
    ("observation", "weights", "expected"),
    [
        (Observation(success=False, quality=1.0), EVEN, 0.0),
        (Observation(success=True, quality=0.7), QUALITY_ONLY, 0.7),
        (Observation(success=True, quality=1.0, latency_s=0.0), EVEN, 1.0),
        (Observation(success=True, quality=1.0, latency_s=10.0), EVEN, (1 + 0.5 + 1) / 3),
        (Observation(True, 1.0, latency_s=10.0, ttft_s=2.0), EVEN, (1 + 0.5 + 1) / 3),
        (Observation(True, 1.0, latency_s=0.0, ttft_s=2.0), EVEN, (1 + 0.75 + 1) / 3),
        (Observation(True, 1.0, cost_usd=0.01), EVEN, (1 + 1 + 0.5) / 3),
        (Observation(True, 1.0, cost_usd=0.03), EVEN, (1 + 1 + 0.25) / 3),
        (Observation(True, 1.0, cost_usd=None), EVEN, 1.0),
        (Observation(True, 2.5), QUALITY_ONLY, 1.0),
        (Observation(True, -1.0), QUALITY_ONLY, 0.0),
        (Observation(True, math.nan), QUALITY_ONLY, 0.0),
        (Observation(True, 1.0, latency_s=math.inf), EVEN, 2 / 3),
        (Observation(True, 1.0, latency_s=-5.0, cost_usd=-1.0), EVEN, 1.0),
    ],
)
def test_reward_table(observation: Observation, weights: RewardWeights, expected: float) -> None:
    assert reward(observation, weights) == pytest.approx(expected)


def test_latency_score_is_monotone_and_smooth() -> None:
    scores = [smooth_score(x, 2.0) for x in (0.0, 0.5, 1.0, 2.0, 8.0, 100.0)]
    assert scores[0] == 1.0
    assert scores[3] == 0.5
    assert all(a > b for a, b in itertools.pairwise(scores))


def test_default_weights_are_valid_and_reward_in_unit_interval() -> None:
    value = reward(Observation(True, 0.9, latency_s=3.0, ttft_s=0.4, cost_usd=0.002),
                   RewardWeights())
    assert 0.0 < value < 1.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"quality": -1.0}, "quality"),
        ({"cost": math.nan}, "cost"),
        ({"quality": 0.0, "latency": 0.0, "cost": 0.0}, "all be 0"),
        ({"latency_target_s": 0.0}, "latency_target_s"),
        ({"ttft_target_s": -1.0}, "ttft_target_s"),
        ({"cost_target_usd": math.inf}, "cost_target_usd"),
    ],
)
def test_bad_weights_raise(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RewardWeights(**options)
