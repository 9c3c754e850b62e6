"""ThompsonPolicy's change detector: a short memory per agent, and cells replaced by it."""

from __future__ import annotations

from policies.base import POOLED, RECENT, DecisionRequest, Delta, Evidence, Table
from policies.replay.scenarios import Synthetic, synthetic_stream
from policies.replay.suite import replay
from policies.replay.suite_metrics import figures
from policies.thompson import ThompsonPolicy, changed

REQUEST = DecisionRequest("bot", "ctx", ("a", "b"))
SHORT = Table("bot", f"{RECENT}:ctx")
TABLES = (Table(POOLED), Table("bot"), Table("bot", "ctx"))


def test_the_test_fires_on_a_shift_and_not_on_noise() -> None:
    cell = Evidence(240.0, 60.0)  # 0.8 over 300 uses
    assert changed(cell, Evidence(24.0, 16.0), 25.0, 2.5)  # 0.6 over the last 40
    assert not changed(cell, Evidence(31.0, 9.0), 25.0, 2.5)  # 0.775: noise
    assert not changed(cell, Evidence(12.0, 8.0), 25.0, 2.5)  # too little short memory
    assert not changed(Evidence(40.0, 20.0), Evidence(0.0, 40.0), 25.0, 2.5)  # cell too small


def test_a_detected_change_replaces_the_cell_and_every_table_follows() -> None:
    policy = ThompsonPolicy(change_memory=50.0, change_z=2.5)
    snapshot = {
        SHORT: {"a": Evidence(5.0, 35.0)},
        TABLES[0]: {"a": Evidence(900.0, 300.0)},
        TABLES[1]: {"a": Evidence(500.0, 150.0)},
        TABLES[2]: {"a": Evidence(240.0, 60.0)},
    }
    found = policy.deltas(REQUEST, "a", 0.0, snapshot)
    short = Delta(SHORT, "a", 0.0 - 0.02 * 5.0, 1.0 - 0.02 * 35.0)
    assert found == (short, *(Delta(t, "a", 5.0 - 240.0, 35.0 + 1.0 - 60.0) for t in TABLES))


def test_without_a_change_only_the_discounts_apply() -> None:
    policy = ThompsonPolicy(change_memory=50.0, change_z=2.5, choice_discount=0.0)
    snapshot = {SHORT: {"a": Evidence(32.0, 8.0)}, TABLES[2]: {"a": Evidence(240.0, 60.0)}}
    found = policy.deltas(REQUEST, "a", 1.0, snapshot)
    assert found == (Delta(SHORT, "a", 1.0 - 0.02 * 32.0, 0.0 - 0.02 * 8.0),
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
