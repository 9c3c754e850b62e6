"""The scenario suite: generator closed forms, exact figures, determinism, policy changes."""

from __future__ import annotations

import json
import random

import pytest

from policies.base import DecisionRequest
from policies.evidence_tables import EvidenceTables
from policies.replay.scenarios import (
    Stream,
    Synthetic,
    costs_by_rank,
    draw_world,
    expected_best_fixed,
    expected_oracle,
    synthetic_stream,
    zipf_weights,
)
from policies.replay.suite import NEW, SuiteOptions, Variant, as_dict, replay, run_suite
from policies.replay.suite_metrics import best_fixed_models, figures, recovery_time
from policies.thompson import ThompsonPolicy
from proxy.cli.main import main


def test_binary_generator_matches_its_closed_form() -> None:
    spec = Synthetic(3, agents=2, binary=True, contexts=1, agree=False)
    stream = synthetic_stream(spec, 40_000, seed=1, name="closed")
    world = draw_world(spec, random.Random("closed:1:world"))
    found = figures(stream, [0] * len(stream.requests))
    assert found.best_fixed == pytest.approx(expected_best_fixed(spec, world), abs=0.01)
    assert found.oracle == pytest.approx(expected_oracle(spec, world), abs=0.01)


def test_generator_shapes() -> None:
    assert zipf_weights(3) == pytest.approx([0.5665, 0.2643, 0.1692], abs=1e-3)
    costs = costs_by_rank([0.5, 0.8, 0.6])
    assert costs == pytest.approx((0.0001, 0.01, 0.001))
    stream = synthetic_stream(Synthetic(4, event="new"), 100, seed=0)
    assert len(stream.requests[0].candidates) == 4
    assert len(stream.requests[-1].candidates) == 5
    assert stream.boundaries == (50,)
    outage = synthetic_stream(Synthetic(4, event="outage"), 100, seed=0)
    assert outage.boundaries == (40, 50)


def _hand_stream() -> Stream:
    a, b = DecisionRequest("a", "", ("x", "y")), DecisionRequest("b", "", ("x", "y"))
    return Stream(("x", "y"), (a, a, b, a), ((1.0, 0.0), (1.0, 0.5), (0.0, 1.0), (0.0, 1.0)),
                  (0, 0, 0, 1))


def test_figures_are_exact_per_agent_and_phase() -> None:
    stream = _hand_stream()
    assert best_fixed_models(stream) == {("a", 0): 0, ("b", 0): 1, ("a", 1): 1}
    found = figures(stream, [0, 0, 0, 0], points=4, min_requests=1)
    assert found.best_fixed == pytest.approx(1.0)
    assert found.policy == pytest.approx(0.5)
    assert found.oracle == pytest.approx(1.0)
    assert found.random == pytest.approx((0.5 + 0.75 + 0.5 + 0.5) / 4)
    assert found.regret == pytest.approx((0.0, 0.0, 1.0, 2.0))
    assert found.recovery == (None,)


def test_recovery_time_counts_until_the_window_holds_the_target() -> None:
    assert recovery_time([0] * 50 + [1] * 200, target=1) == 130
    assert recovery_time([1] * 100, target=1) == 100  # a full window first
    assert recovery_time([0, 1] * 200, target=1) is None


def _phase_stream(per_agent: dict[str, int]) -> Stream:
    """Phase 0: one request per agent; phase 1: ``per_agent`` requests each, x always best."""
    requests = [DecisionRequest(a, "", ("x", "y")) for a in per_agent]
    requests += [DecisionRequest(a, "", ("x", "y")) for a, n in per_agent.items() for _ in range(n)]
    rewards = ((0.0, 1.0),) * len(per_agent) + ((1.0, 0.0),) * (len(requests) - len(per_agent))
    phases = (0,) * len(per_agent) + (1,) * (len(requests) - len(per_agent))
    return Stream(("x", "y"), tuple(requests), rewards, phases)


def test_recovery_measures_every_agent_of_a_short_phase() -> None:
    # An outage-sized phase: no agent has 1,000 requests in it, yet each is measured.
    stream = _phase_stream({"a": 400, "b": 250})
    picks = [1, 1] + [1] * 30 + [0] * 370 + [1] * 10 + [0] * 240
    assert figures(stream, picks).recovery == (110,)  # a: 30 wrong, then 80 of 100 right
    stuck = [1, 1] + [1] * 30 + [0] * 370 + [1] * 250
    assert figures(stream, stuck).recovery == (None,)  # b never gets there within the phase


def test_recovery_falls_back_to_the_busiest_agent_when_the_phase_is_shorter() -> None:
    stream = _phase_stream({"a": 150, "b": 20})
    picks = [1, 1] + [0] * 150 + [1] * 20  # b, too short to measure, is left out
    assert figures(stream, picks).recovery == (100,)
    assert figures(_phase_stream({"a": 50}), [1] + [0] * 50).recovery == (None,)


def test_the_suite_is_deterministic_from_seeds() -> None:
    options = SuiteOptions(quick=True, seeds=1, only=("k2-binary",), variants=(NEW,))
    first, second = as_dict(run_suite(options)), as_dict(run_suite(options))
    assert first["cells"] == second["cells"]
    other = as_dict(run_suite(SuiteOptions(quick=True, seeds=1, seed_base=7, only=("k2-binary",),
                                           variants=(NEW,))))
    assert other["cells"] != first["cells"]


def test_forced_tries_scale_with_the_number_of_models() -> None:
    policy = ThompsonPolicy()
    assert policy.forced_tries(3) == 5.0
    assert policy.forced_tries(60) == pytest.approx(0.25)
    stream = synthetic_stream(Synthetic(60, contexts=1), 2000, seed=3)
    forced = {}
    unbounded = Variant("previous", "thompson", {"tries_budget": float("inf")})
    for variant in (unbounded, NEW):
        built = variant.make()
        assert isinstance(built, ThompsonPolicy)
        forced[variant.label] = _forced_decisions(stream, built)
    assert forced["previous"] == 300
    assert forced["new"] == 60


def _forced_decisions(stream: Stream, policy: ThompsonPolicy) -> int:
    """How many decisions of a replay of ``stream`` were forced tries."""
    store, rng, count = EvidenceTables(), random.Random(0), 0
    index = {m: i for i, m in enumerate(stream.models)}
    for request, rewards in zip(stream.requests, stream.rewards, strict=True):
        snapshot = store.load_now(policy.tables(request), request.candidates)
        count += bool(policy.undertried(request, snapshot))
        choice = policy.rank(request, snapshot, rng).choice
        store.apply_now(policy.deltas(request, choice, rewards[index[choice]]))
    return count


def test_learnt_context_strength_beats_the_constant_where_contexts_agree() -> None:
    # one agent, so the pool (which keeps its own cap in every cell) does not blur the
    # effect; constant / learnt on seeds 11-14: 98.3 / 99.0, 97.6 / 98.4, 98.1 / 98.8, 98.1 / 99.1%
    stream = synthetic_stream(Synthetic(30, agents=1), 4000, seed=11, name="agree")
    constant = Variant("constant", "thompson", {"context_strength_max": 0.0})
    shares = {v.label: figures(stream, replay(stream, v.make(), 11, None)).share
              for v in (constant, NEW)}
    assert shares["new"] > shares["constant"] + 0.005


def test_cli_suite_prints_json_for_the_chosen_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--suite", "--quick", "--json", "--seeds", "1", "--only", "k2-binary"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {c["scenario"] for c in out["cells"]} == {"k2-binary-1a"}
    assert {c["variant"] for c in out["cells"]} == {"plain", "previous", "new"}
    assert all(0.5 < c["share_of_best_fixed_per_agent"] < 1.1 for c in out["cells"])
