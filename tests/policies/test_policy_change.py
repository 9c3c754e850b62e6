"""ThompsonPolicy's change detector: a short memory per agent, and cells replaced by it."""

from __future__ import annotations

from policies.base import POOLED, RECENT, DecisionRequest, Delta, Evidence, Table
from policies.base import SQUARES as SQUARES_CONTEXT
from policies.replay.scenarios import Synthetic, synthetic_stream
from policies.replay.suite import replay
from policies.replay.suite_metrics import figures
from policies.thompson import ThompsonPolicy, changed

REQUEST = DecisionRequest("bot", "ctx", ("a", "b"))
SHORT = Table("bot", f"{RECENT}:ctx")
SQUARES = Table("bot", f"{SQUARES_CONTEXT}:ctx")
TABLES = (Table(POOLED), Table("bot"), Table("bot", "ctx"))


def test_the_test_fires_on_a_shift_and_not_on_noise() -> None:
    cell = Evidence(240.0, 60.0)  # 0.8 over 300 uses
    assert changed(cell, Evidence(24.0, 16.0), 25.0, 2.5)  # 0.6 over the last 40
    assert not changed(cell, Evidence(31.0, 9.0), 25.0, 2.5)  # 0.775: noise
    assert not changed(cell, Evidence(12.0, 8.0), 25.0, 2.5)  # too little short memory
    assert not changed(Evidence(40.0, 20.0), Evidence(0.0, 40.0), 25.0, 2.5)  # cell too small


def test_a_detected_change_replaces_the_cell_and_every_table_follows() -> None:
    policy = ThompsonPolicy(change_memory=50.0, change_z=2.5, probe_after=0.0, change_keep=0.0)
    snapshot = {
        SHORT: {"a": Evidence(5.0, 35.0)},
        TABLES[0]: {"a": Evidence(900.0, 300.0)},
        TABLES[1]: {"a": Evidence(500.0, 150.0)},
        TABLES[2]: {"a": Evidence(240.0, 60.0)},
    }
    found = policy.deltas(REQUEST, "a", 0.0, snapshot)
    short = Delta(SHORT, "a", 0.0 - 0.02 * 5.0, 1.0 - 0.02 * 35.0)
    squares = Delta(SQUARES, "a", 0.0, 1.0)
    assert found == (short, squares, *(Delta(t, "a", 5.0 - 240.0, 35.0 + 1.0 - 60.0) for t in TABLES))
    kept = ThompsonPolicy(probe_after=0.0, change_keep=10.0).deltas(REQUEST, "a", 0.0, snapshot)
    assert kept[2:] == tuple(Delta(t, "a", 1.25 - 240.0, 8.75 + 1.0 - 60.0) for t in TABLES)


def test_without_a_change_only_the_discounts_apply() -> None:
    policy = ThompsonPolicy(change_memory=50.0, change_z=2.5, choice_discount=0.0, probe_after=0.0)
    snapshot = {SHORT: {"a": Evidence(32.0, 8.0)}, TABLES[2]: {"a": Evidence(240.0, 60.0)}}
    found = policy.deltas(REQUEST, "a", 1.0, snapshot)
    assert found == (Delta(SHORT, "a", 1.0 - 0.02 * 32.0, 0.0 - 0.02 * 8.0),
                     Delta(SQUARES, "a", 1.0, 0.0),
                     *(Delta(t, "a", 1.0, 0.0) for t in TABLES))


def test_warm_start_and_corrections_leave_the_short_memory_alone() -> None:
    found = ThompsonPolicy().deltas(REQUEST, "a", 0.5)
    assert [d.table for d in found] == list(TABLES)


def _drop_recovery(change_memory: float) -> int | None:
    spec = Synthetic(5, near_tie=False, contexts=1, event="drop")
    stream = synthetic_stream(spec, 4000, seed=3, name="forgetting")
    policy = ThompsonPolicy(choice_discount=0.0, change_memory=change_memory)
    return figures(stream, replay(stream, policy, 3, None)).recovery[0]


def test_the_detector_leaves_a_dropped_best_model_without_any_discount() -> None:
    recovered = _drop_recovery(50.0)
    assert recovered is not None and recovered <= 1000
    stuck = _drop_recovery(0.0)
    assert stuck is None or stuck > 1000


def test_a_stationary_workload_keeps_its_share_with_the_detector() -> None:
    stream = synthetic_stream(Synthetic(5, contexts=1), 3000, seed=5, name="stationary")
    off = figures(stream, replay(stream, ThompsonPolicy(change_memory=0.0), 5, None)).share
    on = figures(stream, replay(stream, ThompsonPolicy(), 5, None)).share
    assert on >= off - 0.003


def test_the_observed_variance_fires_where_the_0_1_bound_does_not() -> None:
    cell, recent = Evidence(240.0, 60.0), Evidence(28.8, 11.2)  # 0.8 over 300, 0.72 over 40
    squares = Evidence(40.0 * (0.72**2 + 0.01), 0.0)  # standard deviation 0.1
    assert changed(cell, recent, 25.0, 2.5, squares)
    assert not changed(cell, recent, 25.0, 2.5)


def test_the_squares_are_discounted_like_the_short_memory() -> None:
    policy = ThompsonPolicy(change_memory=50.0, choice_discount=0.0)
    snapshot = {SQUARES: {"a": Evidence(20.0, 20.0)}}
    found = policy.deltas(REQUEST, "a", 0.5, snapshot)
    assert Delta(SQUARES, "a", 0.25 - 0.02 * 20.0, 0.75 - 0.02 * 20.0) in found


def _continuous_drop_recovery(observed_variance: bool) -> int | None:
    spec = Synthetic(11, near_tie=False, contexts=1, event="drop")
    stream = synthetic_stream(spec, 4000, seed=4, name="variance")
    policy = ThompsonPolicy(observed_variance=observed_variance)
    return figures(stream, replay(stream, policy, 4, None)).recovery[0]


def test_continuous_rewards_recover_sooner_with_their_observed_variance() -> None:
    observed, bound = _continuous_drop_recovery(True), _continuous_drop_recovery(False)
    assert observed is not None and observed <= 1000
    assert bound is None or observed < bound
