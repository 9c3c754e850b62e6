"""Warm start from logged outcomes: the deltas, the log reader, the logged reward, and the
evaluator's ``--warm-start`` (a replay that starts from another split's evidence)."""

from __future__ import annotations

import asyncio
import csv
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from policies.base import ALL_PROMPTS, POOLED, DecisionRequest, Delta, Table
from policies.baselines import FixedPolicy
from policies.features import extract_context
from policies.replay.data import ReplayDataError, load_table
from policies.replay.evaluate import EvaluationOptions, evaluate, run_evaluation
from policies.replay.logs import load_logged
from policies.replay.report import format_table
from policies.replay.warm import WarmStart
from policies.reward import Observation, RewardWeights, logged_reward, reward
from policies.thompson import ThompsonPolicy
from policies.warm_start import LoggedOutcome, warm_deltas
from proxy.cli.main import main
from storage.embedded.store import MemoryStore

HEADER = ["prompt_id", "task", "split", "prompt", "model", "quality", "cost_usd", "latency_s"]
QUESTION = "What is the capital of France?"
CODE = "Write a python function that reverses a list."


def outcomes(agent: str, model: str, rewards: list[float], prompt: str = QUESTION) -> list[LoggedOutcome]:
    return [LoggedOutcome(agent, prompt, model, r) for r in rewards]


def cells(deltas: tuple[Delta, ...]) -> dict[tuple[Table, str], tuple[float, float]]:
    return {(d.table, d.model): (d.successes, d.failures) for d in deltas}


# -- warm_deltas ---------------------------------------------------------------------------

def test_evidence_is_capped_per_cell_and_model_with_the_mean_kept() -> None:
    policy = ThompsonPolicy()
    logged = outcomes("a", "m1", [1.0, 1.0, 0.0] * 100) + outcomes("a", "m2", [0.5] * 10)
    found = cells(warm_deltas(policy, logged, strength=30))
    s, f = found[(Table("a"), "m1")]
    assert s + f == pytest.approx(30) and s / (s + f) == pytest.approx(2 / 3)
    assert found[(Table("a"), "m2")] == pytest.approx((5.0, 5.0))  # under the cap: as logged


def test_tables_stay_a_consistent_hierarchy() -> None:
    """Pooled = sum of agents; an agent's table = sum of its context cells (as live writes)."""
    policy = ThompsonPolicy()
    logged = (
        outcomes("a", "m1", [1.0] * 60, QUESTION) + outcomes("a", "m1", [0.0] * 40, CODE)
        + outcomes("b", "m1", [1.0] * 500)
    )
    found = cells(warm_deltas(policy, logged, strength=50))
    agent_a = found[(Table("a"), "m1")]
    contexts = [v for (t, m), v in found.items() if t.scope == "a" and t.context != ALL_PROMPTS]
    assert {extract_context([{"role": "user", "content": p}]) for p in (QUESTION, CODE)} == {
        t.context for (t, _) in found if t.scope == "a" and t.context != ALL_PROMPTS
    }
    assert sum(s for s, _ in contexts) == pytest.approx(agent_a[0])
    assert sum(f for _, f in contexts) == pytest.approx(agent_a[1])
    assert agent_a == pytest.approx((50.0, 40.0))  # 60 rows of one kind capped at 50, 40 kept
    pooled = found[(Table(POOLED), "m1")]
    assert pooled == pytest.approx((50.0 + 50.0, 40.0))


def test_without_context_the_agent_table_is_the_capped_cell() -> None:
    policy = ThompsonPolicy(use_context=False)
    logged = outcomes("a", "m1", [1.0] * 60, QUESTION) + outcomes("a", "m1", [0.0] * 40, CODE)
    found = cells(warm_deltas(policy, logged, strength=50))
    assert set(found) == {(Table(POOLED), "m1"), (Table("a"), "m1")}
    assert found[(Table("a"), "m1")] == pytest.approx((30.0, 20.0))


def test_policy_without_learning_and_bad_strength() -> None:
    assert warm_deltas(FixedPolicy(), outcomes("a", "m1", [1.0]), strength=10) == ()
    with pytest.raises(ValueError, match="strength"):
        warm_deltas(ThompsonPolicy(), outcomes("a", "m1", [1.0]), strength=0)


def picks_after(deltas: tuple[Delta, ...], *, rounds: int = 200) -> Counter[str]:
    """First choices of a fresh agent-a decision on a store holding ``deltas``."""
    policy = ThompsonPolicy()
    store = MemoryStore()
    asyncio.run(store.apply(deltas))
    request = DecisionRequest("a", extract_context([{"role": "user", "content": QUESTION}]), ("m1", "m2"))
    snapshot = store.load_now(policy.tables(request), request.candidates)
    rng = random.Random(0)
    return Counter(policy.rank(request, snapshot, rng).choice for _ in range(rounds))


def test_a_warm_started_policy_routes_to_the_logged_best_model_at_once() -> None:
    logged = outcomes("a", "m1", [0.2] * 50) + outcomes("a", "m2", [0.9] * 50)
    warm = picks_after(warm_deltas(ThompsonPolicy(), logged, strength=50))
    cold = picks_after(())
    assert warm["m2"] == 200
    assert cold["m1"] > 50  # cold, the untried models are tried first


# -- the log reader ------------------------------------------------------------------------

def write_log(path: Path, rows: list[list[object]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_log_rows_may_be_sparse_and_carry_unknowns(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.csv", [
        ["r1", "support", "train", "hi", "m1", "1", "0.002", "1.5"],
        ["r2", "support", "test", "hello", "m2", "0.5", "", ""],
        ["r3", "", "train", "hey", "m1", "0", "", "0.3"],
    ])
    rows = load_logged(log)
    assert [(r.agent, r.model, r.quality, r.cost_usd, r.latency_s) for r in rows] == [
        ("support", "m1", 1.0, 0.002, 1.5), ("support", "m2", 0.5, None, None),
        ("default", "m1", 0.0, None, 0.3),
    ]
    assert [r.prompt_id for r in load_logged(log, split="train")] == ["r1", "r3"]
    assert {r.agent for r in load_logged(log, agent_column=None)} == {"default"}


@pytest.mark.parametrize(("rows", "header", "message"), [
    ([["r1", "t", "s", "p", "m", "high", "", ""]], HEADER, "line 2: quality 'high' is not a number"),
    ([["r1", "t", "s", "p", "m", "1", "", "slow"]], HEADER, "line 2: latency_s 'slow'"),
    ([["r1", "t", "s", "p", "", "1", "", ""]], HEADER, "line 2: empty model name"),
    ([["r1", "t", "p", "m"]], ["prompt_id", "task", "prompt", "model"], "missing column(s) quality"),
    ([], HEADER, "no rows"),
])
def test_bad_logs_say_what_is_wrong(
    tmp_path: Path, rows: list[list[object]], header: list[str], message: str
) -> None:
    log = write_log(tmp_path / "bad.csv", rows, header)
    with pytest.raises(ReplayDataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_logged(log)


def test_a_split_with_no_rows_and_a_missing_file(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.csv", [["r1", "t", "train", "p", "m", "1", "", ""]])
    with pytest.raises(ReplayDataError, match="no rows in split 'test'"):
        load_logged(log, split="test")
    with pytest.raises(ReplayDataError, match="cannot open"):
        load_logged(tmp_path / "absent.csv")


# -- logged reward ---------------------------------------------------------------------------

def test_logged_reward_leaves_out_an_unknown_latency() -> None:
    weights = RewardWeights(quality=0.6, latency=0.2, cost=0.2, cost_target_usd=0.01)
    assert logged_reward(1.0, None, 0.01, weights) == pytest.approx((0.6 * 1 + 0.2 * 0.5) / 0.8)
    assert logged_reward(0.0, None, None, weights) == pytest.approx(0.2 / 0.8)  # cost neutral
    known = logged_reward(0.7, 3.0, 0.02, weights)
    assert known == pytest.approx(reward(Observation(True, 0.7, 3.0, None, 0.02), weights))
    assert logged_reward(1.0, None, None, RewardWeights(quality=0, latency=1, cost=0)) is None


# -- the evaluator's warm start ----------------------------------------------------------------

def split_table(tmp_path: Path) -> Path:
    """Two agents and three models; "good" is best on both splits, by a clear margin."""
    rng = random.Random(7)
    rows: list[list[object]] = []
    for i in range(120):
        split = "train" if i % 2 else "test"
        agent = "t1" if i % 3 else "t2"
        for model, rate in (("good", 0.9), ("fair", 0.6), ("poor", 0.3)):
            rows.append([f"p{i}", agent, split, f"question {i}", model, int(rng.random() < rate), "", ""])
    return write_log(tmp_path / "table.csv", rows)


def test_warm_start_from_the_train_split_beats_a_cold_start(tmp_path: Path) -> None:
    data = split_table(tmp_path)
    base: dict[str, Any] = {"data": data, "split": "test", "steps": 300, "seeds": 3}
    cold = run_evaluation(EvaluationOptions(**base))
    warm = run_evaluation(EvaluationOptions(**base, warm_start=WarmStart(data, split="train", strength=50)))
    assert warm.policy.reward > cold.policy.reward + 0.02
    assert warm.share_of_best_fixed_per_agent > 0.97
    summary = warm.options_summary["warm_start"]
    assert summary["rows"] == 180 and summary["split"] == "train" and summary["cells"] > 0
    assert cold.options_summary["warm_start"] is None
    assert "warm start: 180 logged rows" in format_table(warm)
    assert "warm start" not in format_table(cold)


def test_cli_warm_start_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(split_table(tmp_path))
    common = ["evaluate", "--data", data, "--split", "test", "--steps", "50", "--seeds", "1", "--json"]
    assert main([*common, "--warm-split", "train"]) == 2
    assert "--warm-split needs --warm-start" in capsys.readouterr().err
    assert main([*common, "--warm-start", data, "--warm-split", "train", "--warm-strength", "7"]) == 0
    summary = json.loads(capsys.readouterr().out)["options"]["warm_start"]
    assert (summary["split"], summary["strength"], summary["rows"]) == ("train", 7.0, 180)


def test_warm_start_rows_among_the_replayed_prompts_are_refused(tmp_path: Path) -> None:
    data = split_table(tmp_path)
    options = EvaluationOptions(data=data, steps=10, seeds=1, warm_start=WarmStart(data))
    with pytest.raises(ReplayDataError, match="share 120 prompt"):
        run_evaluation(options)


def test_warm_rows_of_other_models_are_counted_not_taught(tmp_path: Path) -> None:
    data = split_table(tmp_path)
    other = write_log(tmp_path / "other.csv", [["x1", "t1", "", "q", "absent-model", "1", "", ""]])
    rows = load_logged(other)
    options = EvaluationOptions(data=data, split="test", steps=10, seeds=1, warm_start=WarmStart(other))
    report = evaluate(load_table(data, split="test"), options, warm_rows=rows)
    assert report.options_summary["warm_start"]["rows_of_other_models"] == 1
    assert report.options_summary["warm_start"]["cells"] == 0


def test_bad_warm_strength_is_refused() -> None:
    with pytest.raises(ValueError, match="strength"):
        WarmStart(Path("x.csv"), strength=0)
