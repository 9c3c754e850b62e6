"""Replay sampled requests through a real policy and the in-memory evidence tables.

Per seed: draw ``steps`` prompts uniformly with replacement (seeded), and for each
one ask the policy to rank the table's models for (agent, context of the prompt),
read the chosen model's outcome from the table, and teach it
``reward = clip(quality - cost_weight * cost_usd, 0, 1)`` through the store.
With a warm start, logged outcomes (another split or file) are first taught to the
store, capped per model and (agent, context) cell (policies.warm_start), before the first request.
The store's clock is virtual: one second per request, so ``half_life_steps``
is a half-life counted in requests. Baselines are exact (see hindsight.py).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policies.base import DecisionRequest, Delta, Policy
from policies.evidence_tables import EvidenceTables
from policies.features import extract_context
from policies.registry import build_policy
from policies.replay.data import OutcomeTable, load_table, replay_reward
from policies.replay.hindsight import Figures, Outcomes, hindsight
from policies.replay.logs import LoggedRow
from policies.replay.report import EvaluationReport, SeedResult
from policies.replay.warm import WarmStart, load_warm_rows, warm_outcomes, warm_summary
from policies.warm_start import warm_deltas

Progress = Callable[[int, int], None]
"""Called with (requests done, requests in all) as the replay advances."""

PROGRESS_EVERY = 500


@dataclass(frozen=True, slots=True)
class EvaluationOptions:
    """What to replay and how; ``agent_column=None`` puts every request under one agent."""

    data: Path
    agent_column: str | None = "task"
    cost_weight: float = 0.0
    steps: int = 10_000
    seeds: int = 5
    policy: str = "thompson"
    split: str | None = None
    seed_base: int = 0
    policy_options: Mapping[str, Any] = field(default_factory=dict)
    half_life_steps: float | None = None
    curve_blocks: int = 20
    warm_start: WarmStart | None = None

    def __post_init__(self) -> None:
        """Raise ValueError for steps, seeds or curve_blocks < 1, or a bad cost weight."""
        for name in ("steps", "seeds", "curve_blocks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (math.isfinite(self.cost_weight) and self.cost_weight >= 0.0):
            raise ValueError(f"cost_weight must be a finite number >= 0, got {self.cost_weight}")


def run_evaluation(
    options: EvaluationOptions, *, progress: Progress | None = None
) -> EvaluationReport:
    """Load ``options.data`` (and the warm-start file) and replay it (raises
    ReplayDataError for a bad file, or warm-start rows among the replayed prompts)."""
    table = load_table(options.data, agent_column=options.agent_column, split=options.split)
    warm: list[LoggedRow] = []
    if options.warm_start is not None:
        warm = load_warm_rows(
            options.warm_start, agent_column=options.agent_column, evaluated=table, data=options.data
        )
    return evaluate(table, options, warm_rows=warm, progress=progress)


def evaluate(
    table: OutcomeTable,
    options: EvaluationOptions,
    *,
    warm_rows: Sequence[LoggedRow] = (),
    progress: Progress | None = None,
) -> EvaluationReport:
    """Replay ``table`` once per seed and average (raises ValueError for a bad policy).

    ``warm_rows`` are taught first when ``options.warm_start`` is set."""
    policy = build_policy(options.policy, **options.policy_options)
    outcomes = outcomes_of(table, options.cost_weight)
    requests = _requests(table)
    warm = _warm(policy, warm_rows, table.models, options)
    started = time.perf_counter()
    seeds = [
        _run_seed(
            outcomes, requests, options, seed, warm=warm, progress=_offset(progress, index, options)
        )
        for index, seed in enumerate(range(options.seed_base, options.seed_base + options.seeds))
    ]
    return EvaluationReport(
        options_summary=_summary(options, table, warm_rows, warm),
        seeds=tuple(seeds),
        elapsed_s=time.perf_counter() - started,
    )


def outcomes_of(table: OutcomeTable, cost_weight: float) -> Outcomes:
    """Per prompt per model: reward = clip(quality - cost_weight * cost, 0, 1)."""
    prompts = table.prompts
    return Outcomes(
        reward=[[replay_reward(q, c, cost_weight) for q, c in zip(p.quality, p.cost, strict=True)]
                for p in prompts],
        quality=[p.quality for p in prompts],
        cost=[p.cost for p in prompts],
        agents=[p.agent for p in prompts],
        models=table.models,
        tasks=[p.task or p.agent for p in prompts],
    )


def _warm(
    policy: Policy, rows: Sequence[LoggedRow], models: Sequence[str], options: EvaluationOptions
) -> tuple[Delta, ...]:
    """The warm-start deltas (none without a warm start)."""
    if options.warm_start is None:
        return ()
    learnt = warm_outcomes(rows, models, options.cost_weight)
    return warm_deltas(policy, learnt, strength=options.warm_start.strength)


def _requests(table: OutcomeTable) -> list[DecisionRequest]:
    """One decision request per prompt: its agent, its context key, every model."""
    return [
        DecisionRequest(p.agent, extract_context([{"role": "user", "content": p.prompt}]),
                        table.models)
        for p in table.prompts
    ]


def _run_seed(
    outcomes: Outcomes,
    requests: Sequence[DecisionRequest],
    options: EvaluationOptions,
    seed: int,
    *,
    warm: Sequence[Delta],
    progress: Progress | None,
) -> SeedResult:
    sample = random.Random(f"{seed}:requests").choices(range(len(requests)), k=options.steps)
    policy = build_policy(options.policy, **options.policy_options)
    picks = asyncio.run(
        _replay(policy, requests=requests, outcomes=outcomes, sample=sample, seed=seed,
                options=options, warm=warm, progress=progress)
    )
    return _seed_result(outcomes, sample, picks, options.curve_blocks)


class _VirtualClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _replay(
    policy: Policy,
    *,
    requests: Sequence[DecisionRequest],
    outcomes: Outcomes,
    sample: Sequence[int],
    seed: int,
    options: EvaluationOptions,
    warm: Sequence[Delta] = (),
    progress: Progress | None,
) -> list[int]:
    """The model index picked for each sampled request, learning as it goes (after
    ``warm`` was applied)."""
    clock = _VirtualClock()
    store = EvidenceTables(half_life_s=options.half_life_steps, clock=clock)
    await store.apply(warm)
    rng = random.Random(f"{seed}:policy")
    index_of = {model: m for m, model in enumerate(outcomes.models)}
    picks = []
    for step, prompt in enumerate(sample, start=1):
        clock.now = float(step)
        request = requests[prompt]
        snapshot = await store.load(policy.tables(request), request.candidates)
        choice = policy.rank(request, snapshot, rng).choice
        picks.append(index_of[choice])
        await store.apply(
            policy.deltas(request, choice, outcomes.reward[prompt][picks[-1]], snapshot)
        )
        if progress is not None and (step % PROGRESS_EVERY == 0 or step == len(sample)):
            progress(step, len(sample))
    await store.close()
    return picks


def _seed_result(
    outcomes: Outcomes, sample: Sequence[int], picks: Sequence[int], blocks: int
) -> SeedResult:
    rewards = [outcomes.reward[p][m] for p, m in zip(sample, picks, strict=True)]
    n = len(sample)
    policy = Figures(
        sum(rewards) / n,
        sum(outcomes.quality[p][m] for p, m in zip(sample, picks, strict=True)) / n,
        sum(outcomes.cost[p][m] for p, m in zip(sample, picks, strict=True)) / n,
    )
    return SeedResult(policy, hindsight(outcomes, sample), block_means(rewards, blocks))


def block_means(values: Sequence[float], blocks: int) -> tuple[float, ...]:
    """Mean of each of ``min(blocks, len(values))`` consecutive, near-equal blocks."""
    count = min(blocks, len(values))
    edges = [len(values) * b // count for b in range(count + 1)]
    return tuple(
        sum(values[lo:hi]) / (hi - lo) for lo, hi in itertools.pairwise(edges)
    )


def _offset(progress: Progress | None, index: int, options: EvaluationOptions) -> Progress | None:
    """``progress`` shifted so seeds add up: (done over all seeds, steps x seeds)."""
    if progress is None:
        return None
    base, total = index * options.steps, options.steps * options.seeds
    return lambda done, _steps: progress(base + done, total)


def _summary(
    options: EvaluationOptions,
    table: OutcomeTable,
    warm_rows: Sequence[LoggedRow],
    warm: Sequence[Delta],
) -> dict[str, Any]:
    return {
        "data": str(options.data),
        "policy": options.policy,
        "policy_options": dict(options.policy_options),
        "agent_column": options.agent_column,
        "cost_weight": options.cost_weight,
        "steps": options.steps,
        "seeds": options.seeds,
        "seed_base": options.seed_base,
        "split": options.split,
        "half_life_steps": options.half_life_steps,
        "prompts": len(table.prompts),
        "models": list(table.models),
        "agents": sorted({p.agent for p in table.prompts}),
        "warm_start": warm_summary(options.warm_start, warm_rows, table.models, len(warm)),
    }
