"""FixedPolicy, UniformPolicy and the policy registry."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from policies.base import DecisionRequest
from policies.baselines import FixedPolicy, UniformPolicy
from policies.registry import POLICY_NAMES, build_policy
from policies.thompson import ThompsonPolicy

REQUEST = DecisionRequest("bot", "chat", ("a", "b", "c"))


def test_fixed_keeps_config_order() -> None:
    policy = FixedPolicy()
    decision = policy.rank(REQUEST, {}, random.Random(0))
    assert decision.ranking == ("a", "b", "c")
    assert not decision.explored
    assert policy.propensity(REQUEST, {}, "a", random.Random(0)) == 1.0
    assert policy.propensity(REQUEST, {}, "b", random.Random(0)) == 0.0
    assert policy.tables(REQUEST) == () == policy.deltas(REQUEST, "a", 1.0)


def test_uniform_is_uniform_and_seeded() -> None:
    policy = UniformPolicy()
    rng = random.Random(3)
    counts = Counter(policy.rank(REQUEST, {}, rng).choice for _ in range(3000))
    assert all(900 < counts[m] < 1100 for m in "abc")
    first = policy.rank(REQUEST, {}, random.Random(8)).ranking
    assert first == policy.rank(REQUEST, {}, random.Random(8)).ranking
    assert sorted(first) == ["a", "b", "c"]
    assert policy.propensity(REQUEST, {}, "b", rng) == pytest.approx(1 / 3)
    assert policy.propensity(REQUEST, {}, "z", rng) == 0.0


def test_registry_builds_each_name() -> None:
    assert set(POLICY_NAMES) >= {"thompson", "fixed", "uniform", "thompson-plain"}
    for name in POLICY_NAMES:
        assert build_policy(name).name == name


def test_registry_variants_differ_in_levels() -> None:
    plain = build_policy("thompson-plain")
    full = build_policy("thompson", exploration_rate=0.05)
    assert isinstance(plain, ThompsonPolicy) and isinstance(full, ThompsonPolicy)
    assert len(plain.tables(REQUEST)) == 1
    assert len(full.posterior_tables(REQUEST)) == 3
    assert len(full.tables(REQUEST)) == 6  # and the change detector's short memory, squares, re-tries
    assert full.exploration_rate == 0.05


def test_registry_rejects_unknown_names_and_options() -> None:
    with pytest.raises(ValueError, match="allowed: thompson"):
        build_policy("greedy")
    with pytest.raises(ValueError, match="fixed"):
        build_policy("fixed", exploration_rate=0.1)
