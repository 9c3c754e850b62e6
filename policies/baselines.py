"""Baseline policies that learn nothing: config order and uniform random."""

from __future__ import annotations

import random

from policies.base import Beta, Decision, DecisionKind, DecisionRequest, Delta, Snapshot, Table


class FixedPolicy:
    """Always the candidates in their configured order."""

    __slots__ = ("name",)

    def __init__(self, *, name: str = "fixed") -> None:
        self.name = name

    def tables(self, request: DecisionRequest) -> tuple[Table, ...]:
        """None: a fixed order reads no evidence."""
        return ()

    def rank(self, request: DecisionRequest, snapshot: Snapshot, rng: random.Random) -> Decision:
        """The candidates as given; the RNG is not used."""
        return Decision(request.candidates)

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

    def propensity(
        self, request: DecisionRequest, snapshot: Snapshot, model: str, rng: random.Random
    ) -> float:
        """1 for the first candidate, else 0."""
        return 1.0 if request.candidates[:1] == (model,) else 0.0


class UniformPolicy:
    """A uniformly random choice; the fallbacks in random order too."""

    __slots__ = ("name",)

    def __init__(self, *, name: str = "uniform") -> None:
        self.name = name

    def tables(self, request: DecisionRequest) -> tuple[Table, ...]:
        """None: uniform choice reads no evidence."""
        return ()

    def rank(self, request: DecisionRequest, snapshot: Snapshot, rng: random.Random) -> Decision:
        """A random permutation of the candidates (every one explored)."""
        ranking = list(request.candidates)
        rng.shuffle(ranking)
        return Decision(tuple(ranking), explored=True, kind=DecisionKind.EXPLORED)

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

    def propensity(
        self, request: DecisionRequest, snapshot: Snapshot, model: str, rng: random.Random
    ) -> float:
        """1/k for each of the k candidates, 0 for anything else."""
        if model not in request.candidates:
            return 0.0
        return 1.0 / len(request.candidates)
