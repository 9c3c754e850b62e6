"""A pool voided by a re-try round is read as it is by an agent holding more evidence than it,
and the agent's own stale view is voided at its next use (``voided_pool``; false: the previous
rule, pool minus the agent's stale evidence: nothing, and the stale view kept)."""

from __future__ import annotations

import pytest

from policies.base import POOLED, DecisionRequest, Delta, Evidence, Table
from policies.betamath import VOIDED_MARGIN, hierarchical
from policies.replay.scenarios import Synthetic, synthetic_stream
from policies.replay.suite import replay
from policies.replay.suite_metrics import figures
from policies.thompson import ThompsonPolicy


def test_a_pool_smaller_than_the_agent_is_read_whole() -> None:
    voided, own = Evidence(3.0, 0.0), Evidence(20.0, 60.0)  # 3 good re-tries since the void
    assert hierarchical(voided, own, None, 4.0, None) == pytest.approx((3.0 + 20.0, 60.0))
    assert hierarchical(voided, own, None, 2.0, None) == pytest.approx((2.0 + 20.0, 60.0))  # capped
    previous = hierarchical(voided, own, None, 4.0, None, voided_pool=False)
    assert previous == pytest.approx((20.0, 60.0))  # 3 - 20 and 0 - 60 floored: nothing


def test_a_pool_that_sums_the_agents_is_still_read_minus_the_agent() -> None:
    own = Evidence(20.0, 60.0)
    alone = Evidence(20.0 - 1e-9, 60.0 - 1e-9)  # one agent: pool = own, up to rounding
    assert hierarchical(alone, own, None, 4.0, None) == pytest.approx((20.0, 60.0))
    within = Evidence(20.0, 60.0 - VOIDED_MARGIN)  # less, but by no more than the margin
    assert hierarchical(within, own, None, 4.0, None) == pytest.approx((20.0, 60.0))
    others = Evidence(30.0, 62.0)
    expected = (20.0 + 4.0 * 10 / 12, 60.0 + 4.0 * 2 / 12)  # others (10, 2) capped at 4
    assert hierarchical(others, own, None, 4.0, None) == pytest.approx(expected)


def test_the_policy_reads_the_voided_pool_in_a_context_cell() -> None:
    request = DecisionRequest("bot", "chat", ("a", "b"))
    snapshot = {
        Table(POOLED): {"a": Evidence(3.0, 0.0)},
        Table("bot"): {"a": Evidence(20.0, 60.0)},
        Table("bot", "chat"): {"a": Evidence(2.0, 8.0)},
    }
    caps = {"pool_strength_max": 0.0, "context_strength_max": 0.0, "evidence_scale": 1.0}
    for voided, pool_s in ((True, 3.0), (False, 0.0)):
        policy = ThompsonPolicy(voided_pool=voided, **caps)  # type: ignore[arg-type]
        post = policy.posteriors(request, snapshot)[0]
        rest_s, rest_f = 2.0 * 18 / 70, 2.0 * 52 / 70  # the other contexts, context cap 2
        assert (post.alpha, post.beta) == pytest.approx((1 + pool_s + rest_s + 2.0, 1 + rest_f + 8.0))


def test_the_next_use_after_a_void_voids_the_agents_own_view_and_keeps_the_pool() -> None:
    request = DecisionRequest("bot", "chat", ("a", "b"))
    short, squares, _, pooled, agent, cell = ThompsonPolicy().tables(request)
    snapshot = {
        short: {"a": Evidence(1.0, 29.0)}, squares: {"a": Evidence(0.5, 29.5)},
        pooled: {"a": Evidence(3.0, 0.0)},  # another agent's round voided it; 3 good re-tries since
        agent: {"a": Evidence(20.0, 60.0)}, cell: {"a": Evidence(2.0, 8.0)},
    }
    found = ThompsonPolicy().deltas(request, "a", 1.0, snapshot)
    assert Delta(pooled, "a", 1.0, 0.0) in found  # the pool only gains this answer
    assert Delta(agent, "a", 1.0 - 20.0, -60.0) in found
    assert Delta(cell, "a", 1.0 - 2.0, -8.0) in found
    assert Delta(short, "a", 0.0, -29.0) in found  # the detector's memory restarts too
    previous = ThompsonPolicy(voided_pool=False).deltas(request, "a", 1.0, snapshot)
    assert not any(d.table == agent and d.successes < 0.0 for d in previous)
    unvoided = {**snapshot, pooled: {"a": Evidence(30.0, 61.0)}}
    kept = ThompsonPolicy().deltas(request, "a", 1.0, unvoided)
    assert not any(d.table == agent and d.successes < 0.0 for d in kept)


def _outage(seed: int, *, voided_pool: bool) -> tuple[float, int | None]:
    spec = Synthetic(5, agents=5, near_tie=False, event="outage")
    stream = synthetic_stream(spec, 6000, seed=seed, name="outage")
    found = figures(stream, replay(stream, ThompsonPolicy(voided_pool=voided_pool), seed, None))
    return found.share, found.recovery[1]


def test_after_an_outage_every_agent_learns_from_the_re_tries_of_others() -> None:
    # 5 agents with Zipf traffic; the big ones re-try the best model and void the pool; the small
    # ones read it and drop their stale view. Measured on seeds 1-6: +0.28 to +1.32 points, and
    # the second phase recovers in 133-345 requests where the previous rule never did.
    for seed in range(1, 7):
        share, recovery = _outage(seed, voided_pool=True)
        previous, _ = _outage(seed, voided_pool=False)
        assert share > previous + 0.001, (seed, share, previous)
        assert recovery is not None and recovery <= 1000, (seed, recovery)
