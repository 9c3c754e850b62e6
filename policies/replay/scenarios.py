"""Request streams for the routing scenario suite: real outcome tables and a synthetic generator.

A :class:`Stream` is what one replay sees, step by step: the decision request (agent,
prompt context, candidate models) and the reward every model would have earned on it.
``phases`` cut the stream where the world changes (non-stationary scenarios); the
best fixed model is judged per agent per phase.

The synthetic generator (:class:`Synthetic`), deterministic from (name, seed):

- K models with mean quality drawn once per seed: with ``near_tie`` the top three sit at
  0.80, 0.79 and 0.78 and the rest are uniform in [0.35, 0.70]; else the best is 0.80, the
  second 0.72 and the rest uniform in [0.35, 0.62], so that after a drift event there is one
  clear best model whose share of choices measures recovery. Model order is shuffled, so
  index 0 is not special.
- Cost per call spans 100x, log-uniform from $0.0001 to $0.01 by rank of mean quality (the
  better, the pricier); reward = clip(quality - cost_weight * cost, 0, 1).
- Agents: ``agree`` gives every agent the same means (+ N(0, 0.01) each); otherwise each
  agent gets its own random permutation of the means, so their best models differ. Traffic
  across agents is Zipf-skewed: P(agent i) proportional to 1 / i ** 1.1.
- Each request has one of ``contexts`` prompt contexts (uniform), which shift every model's
  mean by N(0, 0.02) per (agent, context) when there is more than one.
- Quality per request: 0/1 draws (Bernoulli of the mean, independent across models) when
  ``binary``, else clip(mean + d + e, 0, 1) with a shared prompt difficulty d ~ N(0, 0.1)
  and a per-model e ~ N(0, 0.1).
- ``event`` (at half the stream unless stated): "drop" - the best model's quality falls by
  0.2; "price" - the priciest model's price falls 10x; "new" - a model 0.05 better than
  every other is registered (a candidate from then on); "outage" - the best model fails
  every call (reward 0) for a tenth of the stream before half, then recovers.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from policies.base import DecisionRequest
from policies.features import extract_context
from policies.replay.data import OutcomeTable
from policies.replay.evaluate import outcomes_of

ZIPF_EXPONENT = 1.1
CHEAPEST_USD, PRICIEST_USD = 0.0001, 0.01
EVENTS = ("", "drop", "price", "new", "outage")
NEW_MODEL = "new-model"


@dataclass(frozen=True, slots=True)
class Stream:
    """Per step: the request, every model's reward (table order), and the phase."""

    models: tuple[str, ...]
    requests: tuple[DecisionRequest, ...]
    rewards: tuple[tuple[float, ...], ...]
    phases: tuple[int, ...]

    @property
    def boundaries(self) -> tuple[int, ...]:
        """Steps (0-based) where a new phase starts."""
        return tuple(t for t in range(1, len(self.phases)) if self.phases[t] != self.phases[t - 1])


@dataclass(frozen=True, slots=True)
class Synthetic:
    """A synthetic workload (see the module docstring for what each field does)."""

    models: int
    agents: int = 1
    binary: bool = False
    agree: bool = True
    cost_weight: float = 0.0
    near_tie: bool = True
    contexts: int = 3
    event: str = ""

    def __post_init__(self) -> None:
        """Raise ValueError for fewer than 2 models, no agents or contexts, or an unknown event."""
        if self.models < 2 or self.agents < 1 or self.contexts < 1:
            raise ValueError("a synthetic workload needs >= 2 models, >= 1 agent and context")
        if self.event not in EVENTS:
            raise ValueError(f"unknown event {self.event!r}; allowed: {EVENTS}")


@dataclass(frozen=True, slots=True)
class World:
    """What the generator drew for one seed: means per (agent, context), costs, models."""

    models: tuple[str, ...]
    base_means: tuple[float, ...]
    means: dict[tuple[int, int], list[float]]
    costs: tuple[float, ...]
    agent_weights: tuple[float, ...]

    @property
    def best(self) -> int:
        """Index of the model with the highest base mean quality."""
        return max(range(len(self.base_means)), key=self.base_means.__getitem__)


def base_means(k: int, *, near_tie: bool, rng: random.Random) -> list[float]:
    """Mean quality per model, shuffled (see the module docstring)."""
    top, ceiling = ([0.80, 0.79, 0.78], 0.70) if near_tie else ([0.80, 0.72], 0.62)
    means = (top + [rng.uniform(0.35, ceiling) for _ in range(k)])[:k]
    rng.shuffle(means)
    return means


def costs_by_rank(means: Sequence[float]) -> tuple[float, ...]:
    """Cost per call, log-uniform over 100x by rank of mean (best = priciest)."""
    order = sorted(range(len(means)), key=means.__getitem__)
    span = max(len(means) - 1, 1)
    cost = [0.0] * len(means)
    for rank, model in enumerate(order):
        cost[model] = CHEAPEST_USD * (PRICIEST_USD / CHEAPEST_USD) ** (rank / span)
    return tuple(cost)


def zipf_weights(n: int) -> tuple[float, ...]:
    """P(agent i) proportional to 1 / (i + 1) ** ZIPF_EXPONENT, normalised."""
    raw = [1.0 / (i + 1) ** ZIPF_EXPONENT for i in range(n)]
    return tuple(w / sum(raw) for w in raw)


def draw_world(spec: Synthetic, rng: random.Random) -> World:
    """Means per (agent, context), costs and traffic weights for one seed."""
    means = base_means(spec.models, near_tie=spec.near_tie, rng=rng)
    names = [f"m{i:02d}" for i in range(spec.models)]
    if spec.event == "new":
        names.append(NEW_MODEL)
        means.append(max(means) + 0.05)
    cells: dict[tuple[int, int], list[float]] = {}
    for agent in range(spec.agents):
        own = _agent_means(means, spec.agree, rng)
        for context in range(spec.contexts):
            shift = 0.02 if spec.contexts > 1 else 0.0
            cells[agent, context] = [m + rng.gauss(0.0, shift) for m in own]
    return World(tuple(names), tuple(means), cells, costs_by_rank(means), zipf_weights(spec.agents))


def _agent_means(means: Sequence[float], agree: bool, rng: random.Random) -> list[float]:
    if agree:
        return [m + rng.gauss(0.0, 0.01) for m in means]
    if len(means) > 1 and means[-1] == max(means):  # a new model stays the best for everyone
        rest = list(means[:-1])
        rng.shuffle(rest)
        return [*rest, means[-1]]
    shuffled = list(means)
    rng.shuffle(shuffled)
    return shuffled


def synthetic_stream(spec: Synthetic, steps: int, seed: int, name: str = "") -> Stream:
    """The workload ``spec`` over ``steps`` requests, deterministic from (name, seed)."""
    world = draw_world(spec, random.Random(f"{name}:{seed}:world"))
    rng = random.Random(f"{name}:{seed}:traffic")
    contexts = [f"ctx{c}" for c in range(spec.contexts)]
    agents = [f"agent{a:02d}" for a in range(spec.agents)]
    requests, rewards, phases = [], [], []
    cache: dict[tuple[int, int, int], DecisionRequest] = {}
    for step in range(steps):
        phase = _phase(spec.event, step, steps)
        a = rng.choices(range(spec.agents), weights=world.agent_weights)[0]
        c = rng.randrange(spec.contexts)
        k = len(world.models) - (1 if spec.event == "new" and phase == 0 else 0)
        key = (a, c, k)
        if key not in cache:
            cache[key] = DecisionRequest(agents[a], contexts[c], world.models[:k])
        requests.append(cache[key])
        rewards.append(_rewards(spec, world, world.means[a, c], phase, rng))
        phases.append(phase)
    return Stream(world.models, tuple(requests), tuple(rewards), tuple(phases))


def _phase(event: str, step: int, steps: int) -> int:
    half = steps // 2
    if event == "":
        return 0
    if event == "outage":
        start = half - steps // 10
        return 0 if step < start else 1 if step < half else 2
    return 0 if step < half else 1


def _rewards(
    spec: Synthetic, world: World, means: Sequence[float], phase: int, rng: random.Random
) -> tuple[float, ...]:
    """Every model's reward on one request drawn around ``means``, after the event."""
    best, costs = world.best, list(world.costs)
    means = list(means)
    if spec.event == "drop" and phase == 1:
        means[best] -= 0.2
    if spec.event == "price" and phase == 1:
        priciest = max(range(len(costs)), key=costs.__getitem__)
        costs[priciest] /= 10.0
    quality = _quality(means, spec.binary, rng)
    if spec.event == "outage" and phase == 1:
        quality[best] = 0.0
    return tuple(
        min(max(q - spec.cost_weight * cost, 0.0), 1.0) for q, cost in zip(quality, costs, strict=True)
    )


def _quality(means: Sequence[float], binary: bool, rng: random.Random) -> list[float]:
    if binary:
        return [1.0 if rng.random() < m else 0.0 for m in means]
    difficulty = rng.gauss(0.0, 0.1)
    return [min(max(m + difficulty + rng.gauss(0.0, 0.1), 0.0), 1.0) for m in means]


def table_stream(table: OutcomeTable, cost_weight: float, steps: int, seed: int) -> Stream:
    """``steps`` prompts of ``table`` drawn uniformly with replacement, as ``evaluate`` does
    for the same seed (one phase; every model a candidate)."""
    outcomes = outcomes_of(table, cost_weight)
    requests = [
        DecisionRequest(p.agent, extract_context([{"role": "user", "content": p.prompt}]), table.models)
        for p in table.prompts
    ]
    sample = random.Random(f"{seed}:requests").choices(range(len(requests)), k=steps)
    return Stream(
        table.models,
        tuple(requests[i] for i in sample),
        tuple(tuple(outcomes.reward[i]) for i in sample),
        (0,) * steps,
    )


def expected_best_fixed(spec: Synthetic, world: World) -> float:
    """Expected reward per request of the best fixed model per agent, for a stationary
    binary workload with one context (exact: means are Bernoulli rates)."""
    if not (spec.binary and spec.contexts == 1 and spec.event == ""):
        raise ValueError("closed form only for stationary binary workloads with one context")
    total = 0.0
    for agent, weight in enumerate(world.agent_weights):
        rewards = [m - spec.cost_weight * c for m, c in zip(world.means[agent, 0], world.costs,
                                                              strict=True)]
        total += weight * max(rewards)
    return total


def expected_oracle(spec: Synthetic, world: World) -> float:
    """Expected oracle reward per request for a stationary binary workload, one context and
    no cost: 1 - prod(1 - p) per agent (independent draws)."""
    if spec.cost_weight != 0.0:
        raise ValueError("closed form only without cost")
    expected_best_fixed(spec, world)  # same preconditions
    return sum(
        weight * (1.0 - math.prod(1.0 - min(max(p, 0.0), 1.0) for p in world.means[agent, 0]))
        for agent, weight in enumerate(world.agent_weights)
    )
