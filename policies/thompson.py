"""Thompson sampling over hierarchical Beta posteriors.

The posterior of (agent, context, model) is built at decision time from a prior
and up to three evidence tables, each a coarser backup of the next::

    others   = cap(pooled - agent, pool_strength)        other agents' evidence
    agent    = others + agent evidence
    context  = others + cap(agent - cell, context_strength) + cell evidence
    posterior = prior(model) + (context if use_context else agent)

where cell = Table(agent, context). The context strength caps only what the agent's other
contexts say about this one; the pool keeps its own learnt cap in every cell
(``nested_pool``: both capped together, the previous rule, which leaves a cell of a
little-used agent only ``context_strength``'s worth of the other agents' evidence).
A re-try round voids the pool's evidence about a model (policies.probes); until the pool
again holds more than an agent's own evidence, that agent reads it as it is, not minus
its own stale evidence, and its own view of the model is voided at its next use of it,
since the change that round found holds for it too (``voided_pool``; false: the previous
rule, which read nothing and kept the agent's stale view).
``cap`` scales evidence down to at most that many pseudo-observations, mean kept.
Coarser tables include the finer ones' evidence (every level is written by every
update), so it is subtracted first: nothing counts twice. Other agents' experience only
steers a new agent, and the agent's other contexts steer a context cell only until that
cell has data of its own.

``evidence_scale`` multiplies all evidence before the prior is added: a sharper
posterior than Bayes' rule gives, so less exploration; 1 is textbook. Beyond
``scale_models`` candidates (0: never) it grows as (K / scale_models) ** ``scale_power``
(default 1: in proportion to K): with 30 or 60 models a Thompson draw from so many
uncertain posteriors is almost always an exploratory one, and most agents' traffic cannot
pay for that; up to 11 models nothing changes.

``min_tries``: a candidate with less than this much evidence both in the finest table
and from other agents is tried first, uniformly among such candidates. A sharp
posterior alone can lock out a good model after a few unlucky first answers; a handful
of guaranteed tries per model and context makes that rarer. ``tries_budget`` bounds
all forced tries of one table together: each model gets min(min_tries, budget / K), so
60 models are not forced 300 times per context before sampling starts. A model
registered later is onboarded by the same bounded tries.

``context_strength_max``: the strength of the agent's other contexts over a context cell
is learnt per cell (empirical Bayes, ``_agreeing_strength``): from ``context_strength``
where contexts disagree up to this where they agree (0 or below ``context_strength``:
the constant ``context_strength``).

``pool_strength_max``: the same empirical-Bayes estimate for the pooled prior, from how
far this agent's means differ from the other agents' (0 or below ``pool_strength``: the
constant ``pool_strength``). Only models this agent used at least ``pool_least`` times
count: the noise term assumes 0/1 rewards, so with continuous rewards a few uses make
disagreeing agents read as agreeing; with 20+ uses the overstated noise is small against
real disagreement. Until then (a new agent) the constant ``pool_strength`` holds.

``choice_discount`` (gamma): every update of a model first removes that share of the
evidence its finest cell held when the decision was read (the snapshot), and every
coarser table changes by the same amounts (``discounted``): a sliding memory of about
1 / gamma uses per cell, so a model that degrades loses its lead within a few hundred of
its own uses, while models not chosen keep what they showed. Without a snapshot (warm
start, feedback corrections) nothing is discounted.

``change_memory`` (uses; 0: off) and ``change_z``: a change detector. One more table per
finest cell (``short_memory``) remembers each model's last ~``change_memory`` uses there
(per-choice discount 1 / change_memory). When a model is updated and its short-memory mean
is below the finest cell's mean by more than ``change_z`` standard errors, the cell is
replaced by the short memory, scaled down to at most ``change_keep`` uses (every coarser table
changes by the same amounts; the short memory still holds pre-change uses, so a small cell
lets the uses after the change outweigh them soon): a model that
degrades is judged on its recent uses at once, while stationary cells keep their long
memory (``choice_discount``) because the test does not fire. The standard error comes from
the rewards' observed variance over the short memory (``observed_variance``; a second table,
``squares_memory``, keeps their squares): continuous rewards are far less noisy than the 0/1
bound p(1 - p) assumes (off: that bound, which fired ~8x later on them). The short memories
are written only with a snapshot (not by warm start or feedback corrections). A model the detector dropped
is re-tried later (``probe_after`` uses of the cell without it; ``probes`` rounds of
``probe_uses`` consecutive tries, policies.probes), so one that failed for a while and then
recovered is taken up again; stationary cells, where the detector does not fire, pay nothing.

Defaults (scale 3 up to 11 models, 5 tries, budget 15, context strength 2..30, choice discount 0.003)
were tuned with the scenario suite (policies/replay/suite.py) on generator seeds 100+ and RouterBench's
train split, and are reported on seeds 0-2 and the test split.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from policies.base import (
    ALL_PROMPTS,
    POOLED,
    PRIOR_FLOOR,
    RECENT,
    SQUARES,
    Basis,
    Beta,
    Decision,
    DecisionKind,
    DecisionRequest,
    Delta,
    Evidence,
    Snapshot,
    Table,
    side_table,
)
from policies.betamath import clipped_reward, hierarchical, pool_voided
from policies.memo import BoundedMemo
from policies.probes import due, probe_memory, starts_round, use_delta
from policies.propensity import WinsMemo

DEFAULT_PRIOR = Beta(1.0, 1.0)
_DEFAULT_PRIOR_FLOATS = (DEFAULT_PRIOR.alpha, DEFAULT_PRIOR.beta)
_POOLED_TABLE = Table(POOLED)
TableSets = tuple[tuple[Table, ...], tuple[Table, ...]]
"""(every table a decision reads, the tables its posteriors are built from)."""
TABLES_MEMO = 10_000
"""(agent, context) pairs whose table tuples a policy remembers before starting over."""
VARIANCE_FLOOR = 0.0025
"""Smallest reward variance the change detector assumes (a standard deviation of 0.05)."""


class ThompsonPolicy:
    """Thompson sampling with an exploration mix and a hierarchical prior."""

    __slots__ = (
        "_prior_floats",
        "_tables_memo",
        "_wins_memo",
        "change_keep",
        "change_memory",
        "change_z",
        "choice_discount",
        "context_strength",
        "context_strength_max",
        "evidence_scale",
        "exploration_rate",
        "min_tries",
        "name",
        "nested_pool",
        "observed_variance",
        "pool_least",
        "pool_strength",
        "pool_strength_max",
        "priors",
        "probe_after",
        "probe_uses",
        "probes",
        "propensity_draws",
        "scale_models",
        "scale_power",
        "tries_budget",
        "use_context",
        "voided_pool",
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
        tries_budget: float = 15.0,
        context_strength_max: float = 30.0,
        pool_strength_max: float = 300.0,
        choice_discount: float = 0.003,
        change_memory: float = 50.0,
        change_z: float = 2.5,
        pool_least: float = 20.0,
        scale_models: float = 11.0,
        observed_variance: bool = True,
        probe_after: float = 100.0,
        probes: float = 2.0,
        probe_uses: float = 3.0,
        change_keep: float = 10.0,
        scale_power: float = 1.0,
        nested_pool: bool = False,
        voided_pool: bool = True,
    ) -> None:
        """Raise ValueError for a rate outside [0, 1], negative strengths, tries or draws < 1."""
        _check_range("exploration_rate", exploration_rate, 0.0, 1.0)
        _check_range("pool_strength", pool_strength, 0.0, float("inf"))
        _check_range("context_strength", context_strength, 0.0, float("inf"))
        _check_range("evidence_scale", evidence_scale, 1e-6, float("inf"))
        _check_range("min_tries", min_tries, 0.0, float("inf"))
        _check_range("tries_budget", tries_budget, 0.0, float("inf"))
        _check_range("context_strength_max", context_strength_max, 0.0, float("inf"))
        _check_range("pool_strength_max", pool_strength_max, 0.0, float("inf"))
        _check_range("choice_discount", choice_discount, 0.0, 1.0)
        if change_memory != 0.0:
            _check_range("change_memory", change_memory, 2.0, float("inf"))
        _check_range("change_z", change_z, 0.0, float("inf"))
        _check_range("scale_models", scale_models, 0.0, float("inf"))
        _check_range("probe_after", probe_after, 0.0, float("inf"))
        _check_range("probes", probes, 0.0, float("inf"))
        _check_range("probe_uses", probe_uses, 1.0, float("inf"))
        _check_range("change_keep", change_keep, 0.0, float("inf"))
        _check_range("scale_power", scale_power, 0.0, float("inf"))
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
        self._tables_memo: BoundedMemo[tuple[str, str], TableSets]
        self._tables_memo = BoundedMemo(self._build_tables, TABLES_MEMO)
        self.evidence_scale = evidence_scale
        self.min_tries = min_tries
        self.tries_budget = tries_budget
        self.context_strength_max = context_strength_max
        self.pool_strength_max = pool_strength_max
        self.choice_discount = choice_discount
        self.change_memory = change_memory
        self.change_z = change_z
        self.pool_least = pool_least
        self.scale_models = scale_models
        self.observed_variance = observed_variance
        self.probe_after = probe_after
        self.probes = probes
        self.probe_uses = probe_uses
        self.change_keep = change_keep
        self.scale_power = scale_power
        self.nested_pool = nested_pool
        self.voided_pool = voided_pool

    def scale(self, candidates: int) -> float:
        """The evidence scale for ``candidates`` models: ``evidence_scale``, times
        (candidates / scale_models) ** scale_power beyond ``scale_models`` candidates
        (0: constant)."""
        if self.scale_models <= 0.0 or candidates <= self.scale_models:
            return self.evidence_scale
        growth: float = (candidates / self.scale_models) ** self.scale_power
        return self.evidence_scale * growth

    def forced_tries(self, candidates: int) -> float:
        """Tries each of ``candidates`` models gets before sampling: ``min_tries``, cut so
        that all of them together take at most ``tries_budget`` per table."""
        if candidates <= 0:
            return 0.0
        return min(self.min_tries, self.tries_budget / candidates)

    def tables(self, request: DecisionRequest) -> tuple[Table, ...]:
        """The change detector's short memory and squares tables (when on) and its re-try
        table (when re-tries are on too), then the posterior tables: pooled (when pooling),
        agent, and agent+context (when context is used). The last is the finest."""
        return self._memo_tables(request)[0]

    def posterior_tables(self, request: DecisionRequest) -> tuple[Table, ...]:
        """The tables posteriors are built from, coarsest first."""
        return self._memo_tables(request)[1]

    def _memo_tables(self, request: DecisionRequest) -> TableSets:
        """(tables, posterior_tables) of the request's agent and context, built once per pair
        (the options they depend on are fixed at construction); at most TABLES_MEMO pairs."""
        return self._tables_memo((request.agent, request.context))

    def _build_tables(self, agent_context: tuple[str, str]) -> TableSets:
        agent, context = agent_context
        posterior = [Table(agent)]
        if self.pool_strength > 0.0:
            posterior.insert(0, Table(POOLED))
        if self._uses_context(context):
            posterior.append(Table(agent, context))
        found = tuple(posterior)
        if self.change_memory <= 0.0:
            return found, found
        detector: tuple[Table, ...] = (short_memory(found[-1]), squares_memory(found[-1]))
        if self._probing():
            detector = (*detector, probe_memory(found[-1]))
        return (*detector, *found), found

    def rank(self, request: DecisionRequest, snapshot: Snapshot, rng: random.Random) -> Decision:
        """Explore uniformly with probability exploration_rate; else try an under-tried
        candidate (uniformly) if there is one; else Thompson-sample."""
        candidates = request.candidates
        basis = self.basis(request, snapshot)
        alphas, betas, untried = basis.alphas, basis.betas, basis.forced
        explored = self.exploration_rate > 0.0 and rng.random() < self.exploration_rate
        draws: tuple[float, ...] = ()
        if explored:
            pick, kind = rng.randrange(len(candidates)), DecisionKind.EXPLORED
        elif untried:
            pick, kind = untried[rng.randrange(len(untried))], DecisionKind.FORCED_TRY
        else:
            pick, draws = _thompson_draws(alphas, betas, rng)
            kind = DecisionKind.SAMPLED
        ranking = _ranking(candidates, alphas, betas, pick)
        return Decision(ranking, explored or bool(untried), self.tables(request), kind, draws, basis)

    def basis(self, request: DecisionRequest, snapshot: Snapshot) -> Basis:
        """The candidates tried first (``undertried``) and the posteriors (``parameters``)."""
        alphas, betas = self.parameters(request, snapshot)
        return Basis(self.undertried(request, snapshot), tuple(alphas), tuple(betas))

    def undertried(self, request: DecisionRequest, snapshot: Snapshot) -> tuple[int, ...]:
        """Indices of candidates tried first: re-tries due (policies.probes) if any, else those
        tried less than ``min_tries`` times both in the finest table and by other agents
        (pooled minus this agent): what others learnt still steers a new agent, and only
        models nobody else has tried much are forced. A configured prior counts as tries (its
        pseudo-observations beyond Beta(1, 1))."""
        if self._probing():
            memory = snapshot.get(self.tables(request)[2], {})
            retries = due(memory, request.candidates, self.probe_after, self._round())
            if retries:
                return retries
        floor = self.forced_tries(len(request.candidates))
        if floor <= 0.0:
            return ()
        empty: Mapping[str, Evidence] = {}
        finest = snapshot.get(self.posterior_tables(request)[-1], empty)
        pooled = snapshot.get(_POOLED_TABLE, empty) if self.pool_strength > 0.0 else empty
        agent = snapshot.get(Table(request.agent), empty)
        priors = self._prior_floats
        return tuple(
            index
            for index, model in enumerate(request.candidates)
            if _tries(finest, model) + _prior_tries(priors.get(model)) < floor
            and _tries(pooled, model) - _tries(agent, model) < floor
        )

    def deltas(
        self,
        request: DecisionRequest,
        model: str,
        reward: float,
        snapshot: Snapshot | None = None,
    ) -> tuple[Delta, ...]:
        """Add r successes and 1 - r failures to every posterior table.

        Without a snapshot (warm start, feedback corrections) the short memory is left
        alone. With the decision's ``snapshot``, each of ``model``'s cells first sheds
        ``choice_discount`` of the evidence it held then (see ``discounted``), the short
        memory sheds 1 / ``change_memory`` of its own, and a detected change replaces the
        finest cell by the short memory (see ``changed``). A re-try round's start, and the
        first use by another agent after the round voided the pool (``voided_pool``), void
        what this agent held about the model (the latter leaves the pool as it is)."""
        r = clipped_reward(reward)
        found = self.posterior_tables(request)
        if snapshot is None:
            return tuple(Delta(table, model, r, 1.0 - r) for table in found)
        tables = self.tables(request)
        if self.change_memory <= 0.0:
            return discounted(found, snapshot, model, r, self.choice_discount)
        recent = snapshot.get(tables[0], {}).get(model)
        squares = snapshot.get(tables[1], {}).get(model)
        memory = snapshot.get(tables[2], {}) if self._probing() else {}
        rounds = self._round()
        retried = model in self._names(request, due(memory, request.candidates, self.probe_after, rounds))
        dropped = False
        cell = snapshot.get(found[-1], {}).get(model)
        round_starts = retried and starts_round(memory.get(model), rounds)
        if round_starts or self._pool_voided_since(request.agent, model, snapshot):
            short = (*reset(tables[:1], snapshot, model, r), *reset(tables[1:2], snapshot, model, r * r))
            if round_starts:
                cells = reset(found, snapshot, model, r)
            else:  # the pool keeps what it holds, newer than this agent's view
                cells = (Delta(found[0], model, r, 1.0 - r), *reset(found[1:], snapshot, model, r))
        else:
            short = (*discounted(tables[:1], snapshot, model, r, 1.0 / self.change_memory),
                     *discounted(tables[1:2], snapshot, model, r * r, 1.0 / self.change_memory))
            if not retried and recent is not None and changed(
                cell, recent, self.change_memory / 2, self.change_z,
                squares if self.observed_variance else None,
            ):
                kept = capped(recent, self.change_keep)
                dropped, cells = True, replaced(found, snapshot, model, r, kept)
            else:
                cells = discounted(found, snapshot, model, r, self.choice_discount)
        if not self._probing():
            return (*short, *cells)
        probe = use_delta(tables[2], memory, request.candidates, model, gap_cap=2.0 * self.probe_after,
                          owe=round(self.probes) * rounds if dropped else 0, retried=retried)
        return (*short, probe, *cells)

    def propensity(
        self,
        request: DecisionRequest,
        snapshot: Snapshot,
        model: str,
        rng: random.Random,
        decision: Decision | None = None,
    ) -> float:
        """P(rank picks ``model``), exploration mix included (see ``propensities``); from
        ``decision``'s basis when it has one, else from ``snapshot``."""
        if model not in request.candidates:
            return 0.0
        basis = decision.basis if decision is not None else None
        return self.propensities(request, snapshot, rng, basis).get(model, 0.0)

    def propensities(
        self,
        request: DecisionRequest,
        snapshot: Snapshot,
        rng: random.Random,
        basis: Basis | None = None,
    ) -> dict[str, float]:
        """Pick probability of every candidate (sums to 1): eps/k + (1 - eps) * P(pick).

        P(pick) is 1/u for each of u under-tried candidates when there are any, else
        P(top draw), integrated numerically (policies.propensity); only when some
        alpha or beta is below 1 (a density unbounded at an edge) is it estimated from
        ``propensity_draws`` Monte Carlo picks with ``rng``. ``basis`` (what ``rank`` drew
        from for this snapshot) spares computing it again.
        """
        eps, k = self.exploration_rate, len(request.candidates)
        wins = self._pick_probabilities(basis or self.basis(request, snapshot), rng)
        return {m: eps / k + (1.0 - eps) * w for m, w in zip(request.candidates, wins, strict=True)}

    def _pick_probabilities(self, basis: Basis, rng: random.Random) -> list[float]:
        """P(pick) of each candidate when not exploring (see ``propensities``)."""
        forced, alphas, betas = basis
        if forced:
            share = 1.0 / len(forced)
            return [share if i in forced else 0.0 for i in range(len(alphas))]
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
        scale, priors, floor = self.scale(len(request.candidates)), self._prior_floats, PRIOR_FLOOR
        if pool_cap > 0.0 and self.pool_strength_max > pool_cap:
            pool_cap = _agreeing_strength(
                pooled, agent, request.candidates, pool_cap, self.pool_strength_max, scale=scale,
                least=self.pool_least,
            )
        cells: Mapping[str, Evidence] = empty
        context_cap: float | None = None
        if self._uses_context(request.context):
            cells = snapshot.get(Table(request.agent, request.context), empty)
            context_cap = self.context_strength
            if self.context_strength_max > context_cap:
                context_cap = _agreeing_strength(
                    agent, cells, request.candidates, context_cap, self.context_strength_max
                )
        alphas: list[float] = []
        betas: list[float] = []
        nested, voided = self.nested_pool, self.voided_pool
        for model in request.candidates:
            s, f = hierarchical(
                pooled.get(model), agent.get(model), cells.get(model), pool_cap, context_cap,
                nested_pool=nested, voided_pool=voided,
            )
            prior_a, prior_b = priors.get(model, _DEFAULT_PRIOR_FLOATS)
            alphas.append(max(prior_a + scale * s, floor))
            betas.append(max(prior_b + scale * f, floor))
        return alphas, betas

    def _pool_voided_since(self, agent: str, model: str, snapshot: Snapshot) -> bool:
        """Whether another agent's re-try round voided the pool's evidence about ``model``
        since ``agent`` learnt it (the pool, a sum over agents, holds less than the agent):
        the agent's own view is then as stale as the pool's was, and is judged afresh."""
        if not self.voided_pool or self.pool_strength <= 0.0:
            return False
        own = snapshot.get(Table(agent), {}).get(model)
        if own is None:
            return False
        pooled = snapshot.get(_POOLED_TABLE, {}).get(model)
        return pool_voided(0.0 if pooled is None else pooled.total, own.total)

    def _probing(self) -> bool:
        return self.change_memory > 0.0 and self.probe_after > 0.0 and round(self.probes) > 0

    def _round(self) -> int:
        return max(round(self.probe_uses), 1)

    @staticmethod
    def _names(request: DecisionRequest, indices: Sequence[int]) -> tuple[str, ...]:
        return tuple(request.candidates[i] for i in indices)

    def _uses_context(self, context: str) -> bool:
        return self.use_context and context != ALL_PROMPTS


def discounted(
    tables: Sequence[Table], snapshot: Snapshot, model: str, r: float, discount: float
) -> tuple[Delta, ...]:
    """Deltas that turn the finest cell's (s, f) as read into ((1 - discount) s + r,
    (1 - discount) f + 1 - r), and change every coarser table by the same amounts, so
    each table stays the sum of the cells below it. Evidence is forgotten per choice of
    the model in that cell, not per second: a lead lost to drift fades as fast as the
    model is used."""
    cell = snapshot.get(tables[-1], {}).get(model)
    s, f = (cell.successes, cell.failures) if cell is not None else (0.0, 0.0)
    ds, df = r - discount * s, 1.0 - r - discount * f
    return tuple(Delta(table, model, ds, df) for table in tables)


def short_memory(finest: Table) -> Table:
    """The change detector's table for the finest cell ``finest``: same scope, context
    ``RECENT`` (all prompts) or ``RECENT:context``. Per cell, so a model's recent uses are
    compared with the same prompts' history (an agent's mix of prompts may shift)."""
    return side_table(finest, RECENT)


def squares_memory(finest: Table) -> Table:
    """The change detector's table of squared rewards for the finest cell ``finest``
    (context ``SQUARES`` or ``SQUARES:context``), discounted like ``short_memory``."""
    return side_table(finest, SQUARES)


def changed(
    cell: Evidence | None, recent: Evidence, least: float, z: float,
    squares: Evidence | None = None,
) -> bool:
    """Whether the short memory's mean is below the cell's by more than ``z`` standard
    errors: the short memory holds at least ``least`` and the cell twice what it holds.
    One-sided: a rise (a recovery, a price cut) is learnt by the ordinary updates; testing
    it too doubled the false alarms on 0/1 rewards (measured).

    The short memory is (about) a subset of the cell's history, so the difference of the
    means has variance sigma^2 (1 / n_recent - 1 / n_cell). sigma^2 is the rewards' observed
    variance over the short memory when ``squares`` (its squared rewards) is given, else the
    0/1 bound p(1 - p), p the cell's mean; at least ``VARIANCE_FLOOR`` either way, so a cell
    at 0 or 1 still compares."""
    if cell is None:
        return False
    n_recent, n_cell = recent.total, cell.total
    if n_recent < least or n_cell < 2.0 * n_recent:
        return False
    p = cell.successes / n_cell
    recent_mean = recent.successes / n_recent
    gap = recent_mean - p
    sigma2 = p * (1.0 - p) if squares is None else squares.successes / n_recent - recent_mean**2
    variance = max(sigma2, VARIANCE_FLOOR) * (1.0 / n_recent - 1.0 / n_cell)
    return gap < 0.0 and gap * gap > z * z * variance


def reset(tables: Sequence[Table], snapshot: Snapshot, model: str, r: float) -> tuple[Delta, ...]:
    """Deltas that set ``model``'s entry in every one of ``tables`` to this reward alone: all
    they held about it is void (a re-try that shows a failed model recovered)."""
    deltas = []
    for table in tables:
        entry = snapshot.get(table, {}).get(model)
        s, f = (entry.successes, entry.failures) if entry is not None else (0.0, 0.0)
        deltas.append(Delta(table, model, r - s, 1.0 - r - f))
    return tuple(deltas)


def capped(evidence: Evidence, cap: float) -> Evidence:
    """``evidence`` scaled down to at most ``cap`` observations, mean kept (0: as it is)."""
    total = evidence.total
    if cap <= 0.0 or total <= cap:
        return evidence
    return Evidence(evidence.successes * cap / total, evidence.failures * cap / total)


def replaced(
    tables: Sequence[Table], snapshot: Snapshot, model: str, r: float, recent: Evidence
) -> tuple[Delta, ...]:
    """Deltas that turn the finest cell as read into ``recent`` plus this reward, and change
    every coarser table by the same amounts (each stays the sum of its cells)."""
    cell = snapshot.get(tables[-1], {}).get(model)
    s, f = (cell.successes, cell.failures) if cell is not None else (0.0, 0.0)
    ds, df = recent.successes + r - s, recent.failures + 1.0 - r - f
    return tuple(Delta(table, model, ds, df) for table in tables)


def _agreeing_strength(
    agent: Mapping[str, Evidence],
    cell: Mapping[str, Evidence],
    models: Sequence[str],
    low: float,
    high: float,
    *,
    scale: float = 1.0,
    least: float = 1.0,
) -> float:
    """Empirical-Bayes strength of the agent's other contexts over this context cell.

    Method of moments over models seen both in the cell and elsewhere: the spread of
    (cell mean - rest mean) beyond sampling noise estimates how far contexts disagree
    (tau^2); a prior worth p(1 - p) / tau^2 observations, divided by ``scale`` (the
    evidence scale the result will be multiplied by), matches it. Clamped to
    [low, high]; ``low`` while nothing is comparable yet. The same estimate, with the
    pooled table as ``agent`` and the agent's as ``cell``, gives the pool strength.
    """
    excess = weight = spread = 0.0
    for model in models:
        whole, part = agent.get(model), cell.get(model)
        if whole is None or part is None:
            continue
        n_cell = part.successes + part.failures
        n_rest = whole.successes + whole.failures - n_cell
        if n_cell < least or n_rest < 1.0:
            continue
        m_cell = part.successes / n_cell
        m_rest = max(whole.successes - part.successes, 0.0) / n_rest
        m = (whole.successes) / (n_cell + n_rest)
        noise = m * (1.0 - m) * (1.0 / n_cell + 1.0 / n_rest)
        excess += (m_cell - m_rest) ** 2 - noise
        spread += m * (1.0 - m)
        weight += 1.0
    if weight == 0.0:
        return low
    tau2 = excess / weight
    if tau2 <= 0.0:
        return high
    return min(max(spread / weight / tau2 / scale, low), high)


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


def _thompson_draws(
    alphas: Sequence[float], betas: Sequence[float], rng: random.Random
) -> tuple[int, tuple[float, ...]]:
    """``_thompson_pick`` that also returns every draw (same RNG use, same pick)."""
    draw_beta = rng.betavariate
    draws = tuple(draw_beta(alpha, beta) for alpha, beta in zip(alphas, betas, strict=True))
    best, best_draw = 0, -1.0
    for index, draw in enumerate(draws):
        if draw > best_draw:
            best, best_draw = index, draw
    return best, draws


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
