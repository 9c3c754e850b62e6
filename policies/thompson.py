"""Thompson sampling over hierarchical Beta posteriors.

The posterior of (agent, context, model) is built at decision time from a prior
and up to three evidence tables, each a coarser backup of the next::

    others   = cap(pooled - agent, pool_strength)        other agents' evidence
    agent    = others + agent evidence
    context  = cap(others + agent - cell, context_strength) + cell evidence
    posterior = prior(model) + (context if use_context else agent)

where cell = Table(agent, context). ``cap`` scales evidence down to at most that many
pseudo-observations, mean kept. Coarser tables include the finer ones' evidence
(every level is written by every update), so it is subtracted first: nothing counts
twice. Other agents' experience only steers a new agent, and the agent's other
contexts steer a context cell only until that cell has data of its own.

``evidence_scale`` multiplies all evidence before the prior is added: a sharper
posterior than Bayes' rule gives, so less exploration; 1 is textbook.

``min_tries``: a candidate with less than this much evidence both in the finest table
and from other agents is tried first, uniformly among such candidates. A sharp
posterior alone can lock out a good model after a few unlucky first answers; a handful
of guaranteed tries per model and context makes that rarer. The
defaults (scale 3, 5 tries) were tuned on RouterBench's train split over 20 seeds
(bench: ``model-manager evaluate --split train``) and checked on its test split.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from policies.base import (
    ALL_PROMPTS,
    POOLED,
    PRIOR_FLOOR,
    Beta,
    Decision,
    DecisionRequest,
    Delta,
    Evidence,
    Snapshot,
    Table,
)
from policies.betamath import clipped_reward, hierarchical
from policies.propensity import WinsMemo

DEFAULT_PRIOR = Beta(1.0, 1.0)
_DEFAULT_PRIOR_FLOATS = (DEFAULT_PRIOR.alpha, DEFAULT_PRIOR.beta)
_POOLED_TABLE = Table(POOLED)


class ThompsonPolicy:
    """Thompson sampling with an exploration mix and a hierarchical prior."""

    __slots__ = (
        "_prior_floats",
        "_wins_memo",
        "context_strength",
        "evidence_scale",
        "exploration_rate",
        "min_tries",
        "name",
        "pool_strength",
        "priors",
        "propensity_draws",
        "use_context",
    )

    def __init__(
        self,
        *,
        name: str = "thompson",
        exploration_rate: float = 0.0,
        priors: Mapping[str, Beta] | None = None,
        pool_strength: float = 4.0,
        use_context: bool = True,
        context_strength: float = 2.0,
        propensity_draws: int = 64,
        evidence_scale: float = 3.0,
        min_tries: float = 5.0,
    ) -> None:
        """Raise ValueError for a rate outside [0, 1], negative strengths, tries or draws < 1."""
        _check_range("exploration_rate", exploration_rate, 0.0, 1.0)
        _check_range("pool_strength", pool_strength, 0.0, float("inf"))
        _check_range("context_strength", context_strength, 0.0, float("inf"))
        _check_range("evidence_scale", evidence_scale, 1e-6, float("inf"))
        _check_range("min_tries", min_tries, 0.0, float("inf"))
        if propensity_draws < 1:
            raise ValueError(f"propensity_draws must be >= 1, got {propensity_draws}")
        self.name = name
        self.exploration_rate = exploration_rate
        self.priors: Mapping[str, Beta] = dict(priors or {})
        self._prior_floats = {m: (b.alpha, b.beta) for m, b in self.priors.items()}
        self.pool_strength = pool_strength
        self.use_context = use_context
        self.context_strength = context_strength
        self.propensity_draws = propensity_draws
        self._wins_memo = WinsMemo()
        self.evidence_scale = evidence_scale
        self.min_tries = min_tries

    def tables(self, request: DecisionRequest) -> tuple[Table, ...]:
        """Pooled (when pooling), agent, and agent+context (when context is used)."""
        found = [Table(request.agent)]
        if self.pool_strength > 0.0:
            found.insert(0, Table(POOLED))
        if self._uses_context(request):
            found.append(Table(request.agent, request.context))
        return tuple(found)

    def rank(self, request: DecisionRequest, snapshot: Snapshot, rng: random.Random) -> Decision:
        """Explore uniformly with probability exploration_rate; else try an under-tried
        candidate (uniformly) if there is one; else Thompson-sample."""
        candidates = request.candidates
        alphas, betas = self.parameters(request, snapshot)
        explored = self.exploration_rate > 0.0 and rng.random() < self.exploration_rate
        untried = () if explored else self.undertried(request, snapshot)
        if explored:
            pick = rng.randrange(len(candidates))
        elif untried:
            pick = untried[rng.randrange(len(untried))]
        else:
            pick = _thompson_pick(alphas, betas, rng)
        decision = _ranking(candidates, alphas, betas, pick)
        return Decision(decision, explored or bool(untried), self.tables(request))

    def undertried(self, request: DecisionRequest, snapshot: Snapshot) -> tuple[int, ...]:
        """Indices of candidates tried less than ``min_tries`` times both in the finest
        table and by other agents (pooled minus this agent): what others learnt still
        steers a new agent, and only models nobody else has tried much are forced.
        A configured prior counts as tries (its pseudo-observations beyond Beta(1, 1))."""
        if self.min_tries <= 0.0:
            return ()
        empty: Mapping[str, Evidence] = {}
        finest = snapshot.get(self.tables(request)[-1], empty)
        pooled = snapshot.get(_POOLED_TABLE, empty) if self.pool_strength > 0.0 else empty
        agent = snapshot.get(Table(request.agent), empty)
        floor, priors = self.min_tries, self._prior_floats
        return tuple(
            index
            for index, model in enumerate(request.candidates)
            if _tries(finest, model) + _prior_tries(priors.get(model)) < floor
            and _tries(pooled, model) - _tries(agent, model) < floor
        )

    def deltas(self, request: DecisionRequest, model: str, reward: float) -> tuple[Delta, ...]:
        """Add r successes and 1 - r failures to every table the policy reads."""
        r = clipped_reward(reward)
        return tuple(Delta(table, model, r, 1.0 - r) for table in self.tables(request))

    def propensity(
        self, request: DecisionRequest, snapshot: Snapshot, model: str, rng: random.Random
    ) -> float:
        """P(rank picks ``model``), exploration mix included (see ``propensities``)."""
        if model not in request.candidates:
            return 0.0
        return self.propensities(request, snapshot, rng).get(model, 0.0)

    def propensities(
        self, request: DecisionRequest, snapshot: Snapshot, rng: random.Random
    ) -> dict[str, float]:
        """Pick probability of every candidate (sums to 1): eps/k + (1 - eps) * P(pick).

        P(pick) is 1/u for each of u under-tried candidates when there are any, else
        P(top draw), integrated numerically (policies.propensity); only when some
        alpha or beta is below 1 (a density unbounded at an edge) is it estimated from
        ``propensity_draws`` Monte Carlo picks with ``rng``.
        """
        eps, k = self.exploration_rate, len(request.candidates)
        wins = self._pick_probabilities(request, snapshot, rng)
        return {m: eps / k + (1.0 - eps) * w for m, w in zip(request.candidates, wins, strict=True)}

    def _pick_probabilities(
        self, request: DecisionRequest, snapshot: Snapshot, rng: random.Random
    ) -> list[float]:
        """P(pick) of each candidate when not exploring (see ``propensities``)."""
        untried = self.undertried(request, snapshot)
        if untried:
            share = 1.0 / len(untried)
            return [share if i in untried else 0.0 for i in range(len(request.candidates))]
        alphas, betas = self.parameters(request, snapshot)
        wins = self._wins_memo.get(alphas, betas)
        if wins is None:
            counts = [0] * len(alphas)
            for _ in range(self.propensity_draws):
                counts[_thompson_pick(alphas, betas, rng)] += 1
            wins = [c / self.propensity_draws for c in counts]
        return wins

    def posteriors(self, request: DecisionRequest, snapshot: Snapshot) -> list[Beta]:
        """The posterior of every candidate, in candidate order."""
        alphas, betas = self.parameters(request, snapshot)
        return [Beta(a, b) for a, b in zip(alphas, betas, strict=True)]

    def posterior(self, request: DecisionRequest, snapshot: Snapshot) -> dict[str, Beta]:
        """Candidate -> the Beta that ``rank`` samples for ``request`` from ``snapshot``."""
        return dict(zip(request.candidates, self.posteriors(request, snapshot), strict=True))

    def parameters(
        self, request: DecisionRequest, snapshot: Snapshot
    ) -> tuple[list[float], list[float]]:
        """(alphas, betas) of every candidate's posterior, in candidate order, as plain floats.

        The hot path of every decision: plain floats, one pair per candidate (betamath.hierarchical).
        """
        empty: Mapping[str, Evidence] = {}
        pool_cap = self.pool_strength
        pooled = snapshot.get(_POOLED_TABLE, empty) if pool_cap > 0.0 else empty
        agent = snapshot.get(Table(request.agent), empty)
        cells: Mapping[str, Evidence] = empty
        context_cap: float | None = None
        if self._uses_context(request):
            cells = snapshot.get(Table(request.agent, request.context), empty)
            context_cap = self.context_strength
        scale, priors, floor = self.evidence_scale, self._prior_floats, PRIOR_FLOOR
        alphas: list[float] = []
        betas: list[float] = []
        for model in request.candidates:
            s, f = hierarchical(pooled.get(model), agent.get(model), cells.get(model), pool_cap, context_cap)
            prior_a, prior_b = priors.get(model, _DEFAULT_PRIOR_FLOATS)
            alphas.append(max(prior_a + scale * s, floor))
            betas.append(max(prior_b + scale * f, floor))
        return alphas, betas

    def _uses_context(self, request: DecisionRequest) -> bool:
        return self.use_context and request.context != ALL_PROMPTS


def _tries(table: Mapping[str, Evidence], model: str) -> float:
    cell = table.get(model)
    return 0.0 if cell is None else cell.successes + cell.failures


def _prior_tries(prior: tuple[float, float] | None) -> float:
    return 0.0 if prior is None else max(prior[0] + prior[1] - 2.0, 0.0)


def _thompson_pick(alphas: Sequence[float], betas: Sequence[float], rng: random.Random) -> int:
    """Index of the largest posterior draw (first on ties)."""
    best, best_draw = 0, -1.0
    draw_beta = rng.betavariate
    for index, alpha in enumerate(alphas):
        draw = draw_beta(alpha, betas[index])
        if draw > best_draw:
            best, best_draw = index, draw
    return best


def _ranking(
    candidates: Sequence[str], alphas: Sequence[float], betas: Sequence[float], pick: int
) -> tuple[str, ...]:
    """The pick, then the other candidates by posterior mean, best first (stable)."""
    if len(candidates) == 1:
        return (candidates[0],)
    means = [a / (a + b) for a, b in zip(alphas, betas, strict=True)]
    rest = sorted((i for i in range(len(candidates)) if i != pick), key=lambda i: -means[i])
    return (candidates[pick], *(candidates[i] for i in rest))


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be within [{low}, {high}], got {value}")
