"""In a context cell the pool keeps its own cap; the context cap limits only the agent's
other contexts (``nested_pool`` restores the previous rule: both capped together)."""

from __future__ import annotations

import pytest

from policies.base import POOLED, DecisionRequest, Evidence, Table
from policies.betamath import hierarchical
from policies.replay.scenarios import Synthetic, synthetic_stream
from policies.replay.suite import replay
from policies.replay.suite_metrics import figures
from policies.thompson import ThompsonPolicy

MODELS = ("a", "b", "c")
_CAPS = {
    "pool_strength": 4.0,
    "context_strength": 2.0,
    "pool_strength_max": 0.0,
    "context_strength_max": 0.0,
    "evidence_scale": 1.0,
}


def _posterior(snapshot: dict[Table, dict[str, Evidence]], *, nested_pool: bool) -> tuple[float, float]:
    """(alpha, beta) of model "a" in the cell (bot, chat)."""
    policy = ThompsonPolicy(nested_pool=nested_pool, **_CAPS)  # type: ignore[arg-type]
    post = policy.posteriors(DecisionRequest("bot", "chat", MODELS), snapshot)[0]
    return post.alpha, post.beta


def test_a_new_agents_cell_gets_the_full_pool_cap() -> None:
    snapshot = {Table(POOLED): {"a": Evidence(900.0, 100.0)}}
    assert _posterior(snapshot, nested_pool=False) == pytest.approx((1 + 3.6, 1 + 0.4))
    assert _posterior(snapshot, nested_pool=True) == pytest.approx((1 + 1.8, 1 + 0.2))


def test_the_context_cap_still_limits_the_agents_other_contexts() -> None:
    # pool 4 (capped from 100), the agent's other contexts 2 (capped from 40), the cell's own 5
    snapshot = {
        Table(POOLED): {"a": Evidence(130.0, 20.0)},
        Table("bot"): {"a": Evidence(35.0, 10.0)},
        Table("bot", "chat"): {"a": Evidence(3.0, 2.0)},
    }
    pool_s, pool_f = 4.0 * 95 / 105, 4.0 * 10 / 105
    rest_s, rest_f = 2.0 * 32 / 40, 2.0 * 8 / 40
    expected = (1 + pool_s + rest_s + 3.0, 1 + pool_f + rest_f + 2.0)
    assert _posterior(snapshot, nested_pool=False) == pytest.approx(expected)
    nested_s, nested_f = 2.0 * (pool_s + 32) / 44, 2.0 * (pool_f + 8) / 44  # capped pool + rest
    nested = (1 + nested_s + 3.0, 1 + nested_f + 2.0)
    assert _posterior(snapshot, nested_pool=True) == pytest.approx(nested)


def test_without_context_the_rule_is_unchanged() -> None:
    pooled, own = Evidence(90.0, 10.0), Evidence(6.0, 4.0)
    for nested in (False, True):
        s, f = hierarchical(pooled, own, None, 4.0, None, nested_pool=nested)
        assert (s, f) == pytest.approx((4.0 * 84 / 90 + 6.0, 4.0 * 6 / 90 + 4.0))


def test_the_pool_in_context_cells_earns_more_with_sixty_models_and_many_agents() -> None:
    # over four seeds measured: 84.2 / 82.7 / 89.6 / 87.6% (nested) -> 87.1 / 85.2 / 90.2 / 88.8%
    stream = synthetic_stream(Synthetic(60, agents=50, binary=True), 3000, 4, "pool-test")
    nested = figures(stream, replay(stream, ThompsonPolicy(nested_pool=True), 4, None))
    own_cap = figures(stream, replay(stream, ThompsonPolicy(), 4, None))
    assert own_cap.share > nested.share + 0.015
