"""How much a cold-start learner must lose on an outcome table, next to a 1% budget.

For each agent (task) of the table: its share T of ``--steps`` replayed requests, its best
fixed model in hindsight, and the Lai-Robbins rate of any consistent policy (one that
never locks out the best model): sum over the other models of
``gap * ln(T) / KL(q_model, q_needed)``, where q is the model's mean quality and q_needed
the quality it would need to tie the best model's reward (rewards as ``evaluate``
scores them: ``clip(quality - L * cost, 0, 1)``; with 0/1 quality the reward is quality
times the cost factor, and the KL is of Bernoulli qualities). It is an asymptotic rate,
not a finite-horizon bound; printed next to the loss a 1% shortfall allows (1% of the best
fixed reward x T), it says how far below a consistent learner's cost that budget is.

Usage: python bench/regret_bound.py --data ../shared/data/routerbench_subset.csv
       [--split test] [--cost-weight 0 20 100] [--steps 10000]
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from pathlib import Path

from policies.replay.data import load_table
from policies.replay.evaluate import outcomes_of
from policies.replay.hindsight import Outcomes


def bernoulli_kl(p: float, q: float) -> float:
    """KL(Bernoulli(p) || Bernoulli(q)), both kept inside (0, 1)."""
    p, q = (min(max(x, 1e-9), 1 - 1e-9) for x in (p, q))
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def agent_rate(
    outcomes: Outcomes, prompts: list[int], cost_weight: float, horizon: float
) -> tuple[str, float, float]:
    """(best model, its mean reward, Lai-Robbins loss rate) over ``prompts``."""
    models = range(len(outcomes.models))
    n = len(prompts)
    reward = [sum(outcomes.reward[p][m] for p in prompts) / n for m in models]
    quality = [sum(outcomes.quality[p][m] for p in prompts) / n for m in models]
    factor = [sum(max(0.0, 1 - cost_weight * outcomes.cost[p][m]) for p in prompts) / n for m in models]
    best = max(models, key=reward.__getitem__)
    rate = 0.0
    for m in models:
        needed = reward[best] / factor[m] if factor[m] > 0 else math.inf
        gap = reward[best] - reward[m]
        if m != best and gap > 0 and needed < 1:
            rate += gap * math.log(horizon) / bernoulli_kl(quality[m], needed)
    return outcomes.models[best], reward[best], rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--cost-weight", type=float, nargs="+", default=[0.0, 20.0, 100.0])
    parser.add_argument("--steps", type=int, default=10_000)
    args = parser.parse_args()
    table = load_table(args.data, split=args.split)
    for weight in args.cost_weight:
        outcomes = outcomes_of(table, weight)
        by_agent: dict[str, list[int]] = defaultdict(list)
        for index, agent in enumerate(outcomes.agents):
            by_agent[agent].append(index)
        total_rate = total_budget = 0.0
        for agent, prompts in sorted(by_agent.items()):
            horizon = args.steps * len(prompts) / len(outcomes.agents)
            model, best, rate = agent_rate(outcomes, prompts, weight, horizon)
            budget = 0.01 * best * horizon
            total_rate, total_budget = total_rate + rate, total_budget + budget
            print(f"L={weight:g} {agent:16} T={horizon:6.0f} best {model[:24]:24} reward {best:.3f} "
                  f"consistent-policy loss rate {rate:6.1f}  1% budget {budget:5.1f}")
        print(f"L={weight:g} all: consistent-policy loss rate {total_rate:.1f} against a 1% budget of "
              f"{total_budget:.1f} ({total_rate / total_budget:.1f}x)\n")


if __name__ == "__main__":
    main()
