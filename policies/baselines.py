"""Baseline policies that learn nothing: config order and uniform random."""

from __future__ import annotations

import random

from policies.base import Beta, Decision, DecisionKind, DecisionRequest, Delta, Snapshot, Table


class _Evidenceless:
    """What a policy that neither reads nor writes evidence answers."""

    __slots__ = ("name",)

    def __init__(self, *, name: str) -> None:
        self.name = name

    def tables(self, request: DecisionRequest) -> tuple[Table, ...]:
        """None: the decision reads no evidence."""
        return ()

    def deltas(
        self,
        request: DecisionRequest,
        model: str,
        reward: float,
        snapshot: Snapshot | None = None,
    ) -> tuple[Delta, ...]:
        """None: nothing to learn."""
        return ()

    def posterior(self, request: DecisionRequest, snapshot: Snapshot) -> dict[str, Beta]:
        """The flat Beta(1, 1) of every candidate: the decision uses no evidence."""
        return dict.fromkeys(request.candidates, Beta())


class FixedPolicy(_Evidenceless):
    """Always the candidates in their configured order."""

    __slots__ = ()

    def __init__(self, *, name: str = "fixed") -> None:
        super().__init__(name=name)

    def rank(self, request: DecisionRequest, snapshot: Snapshot, rng: random.Random) -> Decision:
        """The candidates as given; the RNG is not used."""
        return Decision(request.candidates)

    def propensity(
        self,
        request: DecisionRequest,
        snapshot: Snapshot,
        model: str,
        rng: random.Random,
        decision: Decision | None = None,
    ) -> float:
        """1 for the first candidate, else 0."""
        return 1.0 if request.candidates[:1] == (model,) else 0.0


class UniformPolicy(_Evidenceless):
    """A uniformly random choice; the fallbacks in random order too."""

    __slots__ = ()

    def __init__(self, *, name: str = "uniform") -> None:
        super().__init__(name=name)

    def rank(self, request: DecisionRequest, snapshot: Snapshot, rng: random.Random) -> Decision:
        """A random permutation of the candidates (every one explored)."""
        ranking = list(request.candidates)
        rng.shuffle(ranking)
        return Decision(tuple(ranking), explored=True, kind=DecisionKind.EXPLORED)

    def propensity(
        self,
        request: DecisionRequest,
        snapshot: Snapshot,
        model: str,
        rng: random.Random,
        decision: Decision | None = None,
    ) -> float:
        """1/k for each of the k candidates, 0 for anything else."""
        if model not in request.candidates:
            return 0.0
        return 1.0 / len(request.candidates)
