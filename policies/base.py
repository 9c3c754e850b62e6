"""Value types shared by policies, stores and the proxy pipeline.

Evidence is what stores keep: discounted reward mass per (table, model).
Priors are not stored; a policy adds them when it decides, so changing a prior
in config takes effect at once and corrupt stored cells fall back to the prior.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple, Protocol

POOLED = "*"
"""Scope name of the all-agents table that new agents start from."""

ALL_PROMPTS = ""
"""Context name of an agent's table that ignores prompt features."""

RECENT = "~recent"
"""Context (prefix) of the change detector's short-memory tables: what each model earned over
its last few dozen uses in a cell (``~recent`` or ``~recent:<context>``; policies.thompson)."""

SQUARES = "~squares"
"""Context (prefix) of the change detector's tables of squared rewards, discounted like the
short memory: their mean less the short memory's mean squared is the rewards' variance."""

PRIOR_FLOOR = 1e-3
"""Smallest alpha or beta a Beta may carry; corrupt or zero values clamp here."""


@dataclass(frozen=True, slots=True)
class Beta:
    """A Beta(alpha, beta) posterior over a model's reward rate."""

    alpha: float = 1.0
    beta: float = 1.0

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def plus(self, evidence: Evidence, weight: float = 1.0) -> Beta:
        """This Beta with ``weight`` times the evidence added."""
        return Beta(
            self.alpha + weight * evidence.successes,
            self.beta + weight * evidence.failures,
        )

    def sample(self, rng: random.Random) -> float:
        return rng.betavariate(self.alpha, self.beta)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Discounted reward mass: ``successes`` = sum of r, ``failures`` = sum of 1 - r."""

    successes: float = 0.0
    failures: float = 0.0

    @property
    def total(self) -> float:
        return self.successes + self.failures

    @staticmethod
    def clean(successes: object, failures: object) -> tuple[Evidence, bool]:
        """Evidence from untrusted stored values; ``(evidence, was_corrupt)``.

        Anything that is not a finite number >= 0 becomes 0 (the prior).
        """
        s, s_ok = _finite_non_negative(successes)
        f, f_ok = _finite_non_negative(failures)
        return Evidence(s, f), not (s_ok and f_ok)


def _finite_non_negative(value: object) -> tuple[float, bool]:
    if value is None:
        return 0.0, True
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0, False
    if math.isfinite(number) and number >= 0:
        return number, True
    return 0.0, False


class Table(NamedTuple):
    """One posterior table: a scope (agent name or POOLED) and a prompt context. A named
    tuple, so hashing and comparing it (every cell read is keyed by one) run in C."""

    scope: str
    context: str = ALL_PROMPTS


Snapshot = Mapping[Table, Mapping[str, Evidence]]
"""Evidence per table per model, as read for one decision (missing = no evidence)."""


@dataclass(frozen=True, slots=True)
class Delta:
    """A change to one cell: add ``successes`` and ``failures`` (may be negative)."""

    table: Table
    model: str
    successes: float
    failures: float


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """What a policy decides on: who asks, what kind of prompt, among which models."""

    agent: str
    context: str
    candidates: tuple[str, ...]


class DecisionKind(StrEnum):
    """How a request's model was chosen. A policy sets the first three on its Decision;
    the proxy adds the other two when it knows them (proxy.pipeline.kinds)."""

    SAMPLED = "sampled"
    """The policy's own pick: the top posterior draw (or its fixed rule)."""
    EXPLORED = "explored"
    """An exploration draw: a candidate picked uniformly at random."""
    FORCED_TRY = "forced-try"
    """A candidate tried fewer than ``min_tries`` times (within the tries budget), picked first."""
    FALLBACK = "fallback"
    """The answer came from a model other than the first choice."""
    PINNED = "pinned"
    """One candidate only: the request or its agent pinned the model; nothing was chosen."""


class Basis(NamedTuple):
    """What a posterior-sampling decision was drawn from, in candidate order: the candidates
    it would try first (indices) and every candidate's (alpha, beta)."""

    forced: tuple[int, ...]
    alphas: tuple[float, ...]
    betas: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    """A ranking of candidates: the choice first, then the fallback order.

    ``kind`` says how the choice was made; ``draws`` are the posterior samples of a sampled
    decision, in candidate order (empty otherwise); ``basis`` what a policy that samples
    posteriors drew from (None for other policies), so its propensity reads nothing twice."""

    ranking: tuple[str, ...]
    explored: bool = False
    tables: tuple[Table, ...] = field(default=())
    kind: DecisionKind = DecisionKind.SAMPLED
    draws: tuple[float, ...] = ()
    basis: Basis | None = None

    @property
    def choice(self) -> str:
        return self.ranking[0]


class Policy(Protocol):
    """Routing policy: pure functions of a snapshot and an injected RNG."""

    name: str

    def tables(self, request: DecisionRequest) -> tuple[Table, ...]:
        """The tables a decision for ``request`` reads (and learning writes)."""
        ...

    def rank(
        self, request: DecisionRequest, snapshot: Snapshot, rng: random.Random
    ) -> Decision:
        """Order every candidate: the pick first, then fallbacks best first."""
        ...

    def deltas(
        self,
        request: DecisionRequest,
        model: str,
        reward: float,
        snapshot: Snapshot | None = None,
    ) -> tuple[Delta, ...]:
        """The store updates that teach the policy ``reward`` for ``model``.

        ``snapshot`` is the evidence the decision read: a policy may forget part of it
        with the update. Without it (warm start, a feedback correction that replaces
        a reward already learnt) the update only adds the reward."""
        ...

    def posterior(self, request: DecisionRequest, snapshot: Snapshot) -> dict[str, Beta]:
        """Candidate -> the Beta the policy decides ``request`` on, from ``snapshot`` (pure);
        what stats and metrics report."""
        ...

    def propensity(
        self,
        request: DecisionRequest,
        snapshot: Snapshot,
        model: str,
        rng: random.Random,
        decision: Decision | None = None,
    ) -> float:
        """Probability that ``rank`` picks ``model`` first (may be estimated); ``decision``,
        when given, is what ``rank`` answered for this request and snapshot."""
        ...


class PosteriorStore(Protocol):
    """Where evidence lives. Reads decay evidence to now; writes are atomic per cell."""

    async def load(
        self, tables: Sequence[Table], models: Sequence[str]
    ) -> Snapshot:
        """Evidence for every (table, model), in one round trip, decayed to now.

        Corrupt cells read as empty evidence (and are logged); never raises for them.
        """
        ...

    async def apply(self, deltas: Sequence[Delta]) -> None:
        """Decay each touched cell to now, add its delta, clamp at 0. Atomic per cell."""
        ...

    async def ping(self) -> bool:
        """Whether the backing storage answers now."""
        ...

    async def close(self) -> None:
        """Flush what can be flushed and release connections."""
        ...


def side_table(finest: Table, prefix: str) -> Table:
    """A detector table kept beside the finest cell ``finest``: same scope, context ``prefix``
    (all prompts) or ``prefix:context``, so it follows that cell's prompts only."""
    context = prefix if finest.context == ALL_PROMPTS else f"{prefix}:{finest.context}"
    return Table(finest.scope, context)
