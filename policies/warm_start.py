"""Warm start: turn logged outcomes into the evidence a policy would have learnt from them.

Each logged outcome (agent, prompt, model, reward) is taught through the policy's own
``deltas``, exactly as a live request would be: the same tables (pooled, agent,
agent+prompt context), the same reward mass. Then the evidence of each model in each
finest cell the policy keeps (agent+context, or agent for a policy without context) is
scaled down, mean kept, to at most ``strength`` pseudo-observations: old logs steer the
router without freezing it. One factor per (finest cell, model) scales every table those
outcomes write, so the hierarchy stays consistent (an agent's table is still the sum of
its context cells, the pooled table the sum of the agents').
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from policies.base import DecisionRequest, Delta, Policy, Table
from policies.features import extract_context


@dataclass(frozen=True, slots=True)
class LoggedOutcome:
    """One past call: who asked, the prompt text, the model that answered, its reward."""

    agent: str
    prompt: str
    model: str
    reward: float


def warm_deltas(
    policy: Policy, outcomes: Iterable[LoggedOutcome], *, strength: float
) -> tuple[Delta, ...]:
    """The deltas that teach ``policy`` the outcomes, each (finest cell, model) capped at
    ``strength`` pseudo-observations (ValueError if ``strength`` is not > 0).

    Sorted by table and model, one delta per cell; empty when the policy learns nothing.
    """
    if not strength > 0.0:
        raise ValueError(f"strength must be > 0, got {strength}")
    mass: dict[tuple[Table, str], dict[tuple[Table, str], list[float]]] = defaultdict(dict)
    count: dict[tuple[Table, str], int] = defaultdict(int)
    for outcome in outcomes:
        request = _request(outcome)
        tables = policy.tables(request)
        if not tables:
            continue
        pair = (tables[-1], outcome.model)
        count[pair] += 1
        cells = mass[pair]
        for delta in policy.deltas(request, outcome.model, outcome.reward):
            cell = cells.setdefault((delta.table, delta.model), [0.0, 0.0])
            cell[0] += delta.successes
            cell[1] += delta.failures
    return _scaled_sum(mass, count, strength)


def _request(outcome: LoggedOutcome) -> DecisionRequest:
    context = extract_context([{"role": "user", "content": outcome.prompt}])
    return DecisionRequest(outcome.agent, context, (outcome.model,))


def _scaled_sum(
    mass: dict[tuple[Table, str], dict[tuple[Table, str], list[float]]],
    count: dict[tuple[Table, str], int],
    strength: float,
) -> tuple[Delta, ...]:
    total: dict[tuple[Table, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for pair, cells in mass.items():
        factor = min(1.0, strength / count[pair])
        for key, (successes, failures) in cells.items():
            summed = total[key]
            summed[0] += factor * successes
            summed[1] += factor * failures
    return tuple(
        Delta(table, model, s, f) for (table, model), (s, f) in sorted(total.items())
    )
