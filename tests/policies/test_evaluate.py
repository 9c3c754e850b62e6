"""The offline evaluator on tiny hand-made tables with known answers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from support.paths import DATA

from policies.replay.data import ReplayDataError, load_table
from policies.replay.evaluate import EvaluationOptions, block_means, outcomes_of, run_evaluation
from policies.replay.hindsight import hindsight
from policies.replay.report import format_table, plot_learning_curves

TINY = DATA / "replay_tiny.csv"
CONSTANT = DATA / "replay_constant.csv"


def test_loads_models_agents_and_split() -> None:
    table = load_table(TINY)
    assert table.models == ("a", "b")
    assert [p.agent for p in table.prompts] == ["t1", "t1", "t2"]
    assert table.prompts[0].cost == (0.01, 0.001)
    assert [p.prompt_id for p in load_table(TINY, split="test").prompts] == ["p1", "p2"]
    assert {p.agent for p in load_table(TINY, agent_column=None).prompts} == {"default"}


def test_hindsight_baselines_are_exact() -> None:
    outcomes = outcomes_of(load_table(TINY), cost_weight=0.0)
    found = hindsight(outcomes, [0, 1, 2])
    assert found.oracle.reward == pytest.approx((1 + 1 + 0.5) / 3)
    assert found.best_fixed_overall.reward == pytest.approx(2 / 3)
    assert found.best_overall_model == "a"
    assert found.best_fixed_per_agent.reward == pytest.approx(2.5 / 3)
    assert found.best_model_per_agent == {"t1": "a", "t2": "b"}
    assert found.random.reward == pytest.approx((0.5 + 1 + 0.25) / 3)
    assert found.cheapest_model == "b"
    assert found.cheapest.reward == pytest.approx(0.5)
    assert found.cheapest.cost == pytest.approx(0.001)
    assert found.oracle.cost == pytest.approx((0.01 + 0.001 + 0.001) / 3)


def test_one_agent_replay_still_knows_the_best_model_per_task() -> None:
    outcomes = outcomes_of(load_table(TINY, agent_column=None), cost_weight=0.0)
    found = hindsight(outcomes, [0, 1, 2])
    assert found.best_fixed_per_agent.reward == pytest.approx(2 / 3)
    assert found.best_fixed_per_task.reward == pytest.approx(2.5 / 3)


def test_hindsight_weights_repeated_requests() -> None:
    outcomes = outcomes_of(load_table(TINY), cost_weight=0.0)
    found = hindsight(outcomes, [2, 2, 2, 0])
    assert found.best_overall_model == "b"
    assert found.best_fixed_overall.reward == pytest.approx(1.5 / 4)
    assert found.oracle.reward == pytest.approx(2.5 / 4)


def test_cost_weight_enters_the_reward_clipped() -> None:
    outcomes = outcomes_of(load_table(TINY), cost_weight=100.0)
    assert outcomes.reward[0] == [0.0, 0.0]
    assert outcomes.reward[1] == pytest.approx([0.0, 0.9])
    assert outcomes.reward[2] == pytest.approx([0.0, 0.4])


def _options(**changes: object) -> EvaluationOptions:
    base: dict[str, object] = {"data": CONSTANT, "steps": 300, "seeds": 2}
    return EvaluationOptions(**{**base, **changes})  # type: ignore[arg-type]


def test_fixed_policy_scores_its_model_exactly() -> None:
    report = run_evaluation(_options(policy="fixed"))
    assert report.policy.reward == pytest.approx(0.9)
    assert report.baseline("random").reward == pytest.approx(0.5)
    assert report.baseline("oracle").reward == pytest.approx(0.9)
    assert report.share_of_best_fixed_per_agent == pytest.approx(1.0)


def test_thompson_learns_the_good_model() -> None:
    report = run_evaluation(_options(steps=600, agent_column=None))
    assert report.policy.reward > 0.85
    assert report.curve[-1] > report.curve[0]


def test_seeded_determinism_and_seed_variation() -> None:
    first = run_evaluation(_options(data=TINY, policy="uniform"))
    again = run_evaluation(_options(data=TINY, policy="uniform"))
    other = run_evaluation(_options(data=TINY, policy="uniform", seed_base=7))
    assert [s.policy for s in first.seeds] == [s.policy for s in again.seeds]
    assert [s.policy for s in first.seeds] != [s.policy for s in other.seeds]


def test_uniform_matches_the_exact_random_figure() -> None:
    report = run_evaluation(_options(data=TINY, policy="uniform", steps=4000, seeds=1))
    assert report.policy.reward == pytest.approx(report.baseline("random").reward, abs=0.03)


def test_json_report_has_the_headline_keys() -> None:
    report = run_evaluation(_options(curve_blocks=4, half_life_steps=50.0))
    data = json.loads(report.as_json())
    for key in ("policy_mean_reward", "best_fixed_per_agent_mean_reward",
                "best_fixed_overall_mean_reward", "oracle_mean_reward", "random_mean_reward",
                "cheapest_mean_reward", "policy_mean_quality", "policy_mean_cost_usd",
                "gap_closed_vs_best_fixed", "gap_closed_vs_random", "learning_curve"):
        assert key in data
    assert len(data["learning_curve"]) == 4
    assert data["gap_closed_vs_best_fixed"] is None  # oracle == best fixed here: undefined
    assert "policy / best fixed per agent" in format_table(report)


def test_progress_reaches_the_total() -> None:
    seen: list[tuple[int, int]] = []
    run_evaluation(_options(steps=1200),
                   progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (2400, 2400)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_block_means() -> None:
    assert block_means([1.0, 0.0, 1.0, 1.0], 2) == (0.5, 1.0)
    assert block_means([1.0, 0.0], 5) == (1.0, 0.0)


def test_plot_writes_a_png(tmp_path: Path) -> None:
    path = tmp_path / "curve.png"
    plot_learning_curves([run_evaluation(_options())], path)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_plot_without_matplotlib_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(RuntimeError, match="matplotlib"):
        plot_learning_curves([], tmp_path / "x.png")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bad_missing_column.csv", "missing column"),
        ("bad_empty.csv", "empty file"),
        ("bad_quality.csv", "line 3: quality 'good' is not a number"),
        ("bad_cost.csv", "cost_usd 'cheap' is not a number"),
        ("bad_lacking_model.csv", "prompt 'p2' lacks rows for model"),
        ("bad_duplicate.csv", "second row"),
        ("nonexistent.csv", "cannot open"),
    ],
)
def test_bad_files_raise_clear_errors(name: str, message: str) -> None:
    with pytest.raises(ReplayDataError, match=message):
        run_evaluation(_options(data=DATA / name))


def test_bad_split_agent_column_and_binary_file(tmp_path: Path) -> None:
    with pytest.raises(ReplayDataError, match="no rows in split 'dev'"):
        load_table(TINY, split="dev")
    with pytest.raises(ReplayDataError, match=r"missing column.*team"):
        load_table(TINY, agent_column="team")
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"\xff\xfe\x00garbage\x80\x81")
    with pytest.raises(ReplayDataError, match="UTF-8"):
        load_table(junk)


@pytest.mark.parametrize("changes", [{"steps": 0}, {"seeds": 0}, {"cost_weight": -1.0}])
def test_bad_options_raise(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(changes))):
        _options(**changes)


def test_unknown_policy_raises() -> None:
    with pytest.raises(ValueError, match="allowed"):
        run_evaluation(_options(policy="nope"))
