"""Exact baseline figures over a sample of requests, computed in hindsight.

Every figure is an expected value over the same sampled requests the policy saw,
not a simulation: the oracle takes the best reward of each request; a fixed model
scores its mean over the sample; random scores the mean over models.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Figures:
    """Mean reward, quality and cost (USD) per request."""

    reward: float
    quality: float
    cost: float


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Reward, quality and cost per prompt per model, and each prompt's agent."""

    reward: Sequence[Sequence[float]]
    quality: Sequence[Sequence[float]]
    cost: Sequence[Sequence[float]]
    agents: Sequence[str]
    models: Sequence[str]
    tasks: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Hindsight:
    """The baselines of one sample, and which models the fixed ones chose."""

    oracle: Figures
    best_fixed_per_agent: Figures
    best_fixed_per_task: Figures
    best_fixed_overall: Figures
    random: Figures
    cheapest: Figures
    best_overall_model: str
    best_model_per_agent: dict[str, str]
    cheapest_model: str


def hindsight(outcomes: Outcomes, sample: Sequence[int]) -> Hindsight:
    """The baselines over the requests ``sample`` (prompt indices, repeats allowed)."""
    counts = Counter(sample)
    n = len(sample)
    overall = _model_sums(outcomes, counts)
    best = _argmax(overall[0])
    agent_figures, agent_best = _fixed_per_group(outcomes, counts, outcomes.agents)
    task_figures, _ = _fixed_per_group(outcomes, counts, outcomes.tasks or outcomes.agents)
    cheapest = cheapest_model(outcomes)
    return Hindsight(
        oracle=_oracle(outcomes, counts, n),
        best_fixed_per_agent=agent_figures,
        best_fixed_per_task=task_figures,
        best_fixed_overall=_column(overall, best, n),
        random=Figures(*(sum(s) / len(s) / n for s in overall)),
        cheapest=_column(overall, cheapest, n),
        best_overall_model=outcomes.models[best],
        best_model_per_agent=agent_best,
        cheapest_model=outcomes.models[cheapest],
    )


def _fixed_per_group(
    outcomes: Outcomes, counts: Counter[int], groups: Sequence[str]
) -> tuple[Figures, dict[str, str]]:
    """The best fixed model of each group (in hindsight), summed; and which models."""
    n = sum(counts.values())
    parts, chosen = [], {}
    for group in sorted({groups[i] for i in counts}):
        sums = _model_sums(outcomes, _only(counts, groups, group))
        best = _argmax(sums[0])
        parts.append(_column(sums, best, n))
        chosen[group] = outcomes.models[best]
    summed = (sum(getattr(p, f) for p in parts) for f in ("reward", "quality", "cost"))
    return Figures(*summed), chosen


def cheapest_model(outcomes: Outcomes) -> int:
    """Index of the model with the lowest mean cost over the whole table (first on ties)."""
    totals = [sum(row[m] for row in outcomes.cost) for m in range(len(outcomes.models))]
    return min(range(len(totals)), key=totals.__getitem__)


Sums = tuple[list[float], list[float], list[float]]


def _model_sums(outcomes: Outcomes, counts: Counter[int]) -> Sums:
    """Count-weighted sums of reward, quality and cost per model."""
    k = len(outcomes.models)
    sums: Sums = ([0.0] * k, [0.0] * k, [0.0] * k)
    for index, count in counts.items():
        rows = (outcomes.reward[index], outcomes.quality[index], outcomes.cost[index])
        for total, row in zip(sums, rows, strict=True):
            for m in range(k):
                total[m] += count * row[m]
    return sums


def _only(counts: Counter[int], agents: Sequence[str], agent: str) -> Counter[int]:
    return Counter({i: c for i, c in counts.items() if agents[i] == agent})


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


def _column(sums: Sums, model: int, n: int) -> Figures:
    return Figures(sums[0][model] / n, sums[1][model] / n, sums[2][model] / n)


def _oracle(outcomes: Outcomes, counts: Counter[int], n: int) -> Figures:
    """Best reward per request; ties go to the cheaper model, then the first."""
    reward = quality = cost = 0.0
    for index, count in counts.items():
        rewards, costs = outcomes.reward[index], outcomes.cost[index]
        m = max(range(len(rewards)), key=lambda j: (rewards[j], -costs[j]))
        reward += count * rewards[m]
        quality += count * outcomes.quality[index][m]
        cost += count * costs[m]
    return Figures(reward / n, quality / n, cost / n)
