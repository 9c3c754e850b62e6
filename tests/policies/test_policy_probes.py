"""Re-tries of a model the change detector dropped (policies.probes)."""

from __future__ import annotations

from policies.base import DecisionRequest, Delta, Evidence, Table
from policies.probes import cell_uses, due, starts_round, use_delta
from policies.replay.scenarios import Synthetic, synthetic_stream
from policies.replay.suite import replay
from policies.replay.suite_metrics import figures
from policies.thompson import ThompsonPolicy

MODELS = ("a", "b", "c")
TABLE = Table("bot", "~probes:ctx")


def test_a_round_is_due_after_the_model_was_left_alone_long_enough() -> None:
    memory = {"a": Evidence(400.0, 0.0), "b": Evidence(250.0, 6.0), "c": Evidence(350.0, 6.0)}
    assert cell_uses(memory, MODELS) == 400.0
    assert due(memory, MODELS, 100.0, 3) == (1,)
    assert due({**memory, "c": Evidence(350.0, 5.0)}, MODELS, 100.0, 3) == (1, 2)  # within a round
    assert starts_round(memory["b"], 3) and not starts_round(Evidence(0.0, 5.0), 3)


def test_a_use_moves_the_clock_and_a_drop_or_a_re_try_changes_the_debt() -> None:
    memory = {"a": Evidence(400.0, 0.0), "b": Evidence(250.0, 6.0)}
    assert use_delta(TABLE, memory, MODELS, "a", owe=0, retried=False) == Delta(TABLE, "a", 1.0, 0.0)
    assert use_delta(TABLE, memory, MODELS, "a", owe=6, retried=False) == Delta(TABLE, "a", 1.0, 6.0)
    assert use_delta(TABLE, memory, MODELS, "b", owe=0, retried=True) == Delta(TABLE, "b", 151.0, -1.0)


def _concurrent_uses(gap_cap: float) -> float:
    """300 bursts of 8 uses each decided on the burst's one snapshot (as concurrent requests
    read one shared snapshot); the largest use count the re-try table ends with."""
    memory: dict[str, Evidence] = {}
    for burst in range(300):
        snapshot = dict(memory)
        for i in range(8):
            model = MODELS[(burst * 8 + i * 7) % 3]
            delta = use_delta(TABLE, snapshot, MODELS, model, owe=0, retried=False, gap_cap=gap_cap)
            entry = memory.get(model, Evidence())
            memory[model] = Evidence(entry.successes + delta.successes, entry.failures + delta.failures)
    return cell_uses(memory, MODELS)


def test_uses_decided_on_one_snapshot_cannot_blow_the_use_count_up() -> None:
    assert _concurrent_uses(float("inf")) > 1e50  # why the cap exists
    assert _concurrent_uses(200.0) < 200.0 * 2400  # capped: at most linear in the 2400 uses
    assert use_delta(TABLE, {"a": Evidence(900.0, 0.0)}, MODELS, "b", owe=0, retried=False,
                     gap_cap=200.0) == Delta(TABLE, "b", 200.0, 0.0)


def _outage_recovery(probe_after: float, seed: int) -> int | None:
    spec = Synthetic(5, near_tie=False, event="outage")
    stream = synthetic_stream(spec, 6000, seed=seed, name="outage")
    policy = ThompsonPolicy(probe_after=probe_after)
    return figures(stream, replay(stream, policy, seed, None)).recovery[1]


def test_a_model_back_from_an_outage_is_taken_up_again() -> None:
    for seed in (1, 2):
        recovered = _outage_recovery(100.0, seed)
        assert recovered is not None and recovered <= 1000
        assert _outage_recovery(0.0, seed) is None


def test_a_detected_drop_owes_rounds_and_a_round_voids_the_old_evidence() -> None:
    policy = ThompsonPolicy(probes=2.0, probe_uses=3.0)
    request = DecisionRequest("bot", "ctx", ("a", "b"))
    short, squares, probes, *tables = policy.tables(request)
    snapshot = {
        short: {"a": Evidence(5.0, 35.0)}, squares: {"a": Evidence(2.0, 38.0)},
        tables[-1]: {"a": Evidence(240.0, 60.0)},
    }
    assert Delta(probes, "a", 1.0, 6.0) in policy.deltas(request, "a", 0.0, snapshot)
    stale = {**snapshot, probes: {"a": Evidence(10.0, 6.0), "b": Evidence(200.0, 0.0)},
             tables[0]: {"a": Evidence(900.0, 300.0)}}
    assert policy.undertried(request, stale) == (0,)
    found = policy.deltas(request, "a", 1.0, stale)
    assert Delta(tables[0], "a", 1.0 - 900.0, -300.0) in found
    assert Delta(tables[-1], "a", 1.0 - 240.0, -60.0) in found
    assert Delta(probes, "a", 191.0, -1.0) in found
