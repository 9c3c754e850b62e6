"""Explicit feedback: replace the heuristic quality of a decision's reward with a score.

For the answering model of a request, the new reward is ``reward(Observation(quality=score,
same latency, TTFT and cost), the agent's weights)``; the policy's deltas for the new reward
minus those for the reward currently applied go to the store, then the record remembers the
new reward. The swap of the applied reward is a compare-and-set on the decision record
(a Lua script in Redis; atomic on the event loop in memory), retried when a concurrent
feedback won: every committed change moves the posterior by exactly new - applied, so
concurrent feedback telescopes to the last score, and repeating a score changes nothing.
Failed attempts (reward 0) are never touched. The stores clamp evidence at 0, so a
correction never takes alpha or beta below the prior.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from policies.base import DecisionRequest, Delta, Policy, PosteriorStore
from policies.reward import Observation, reward
from proxy.pipeline.router import Router
from proxy.tracking.backend import TrackingBackend
from proxy.tracking.records import DecisionRecord
from proxy.wire.errors import ProxyError

MAX_SWAPS = 8
"""Compare-and-set attempts before a feedback gives up with 409 (heavy contention)."""


@dataclass(frozen=True, slots=True)
class Credit:
    """What one feedback did to one decision."""

    request_id: str
    agent: str
    model: str
    score: float
    previous_reward: float
    reward: float

    @property
    def delta(self) -> float:
        return self.reward - self.previous_reward

    def payload(self) -> dict[str, object]:
        return {
            "request_id": self.request_id,
            "agent": self.agent,
            "model": self.model,
            "score": self.score,
            "previous_reward": self.previous_reward,
            "reward": self.reward,
            "delta": self.delta,
            "changed": self.delta != 0.0,
        }


async def credit_request(
    backend: TrackingBackend, router: Router, store: PosteriorStore, request_id: str, score: float
) -> Credit | None:
    """Apply ``score`` to one decision; None when the record is unknown or expired."""
    for _ in range(MAX_SWAPS):
        record = await backend.decision(request_id)
        if record is None:
            return None
        new = rescored(record, score, router)
        swapped = await backend.swap_applied(request_id, record.applied, new, score)
        if swapped is None:
            return None
        if swapped:
            await store.apply(correction(router.policy_for(record.agent), record, new))
            return Credit(request_id, record.agent, record.model, score, record.applied, new)
    raise ProxyError(409, "feedback_conflict", f"too much concurrent feedback for {request_id!r}; retry")


def rescored(record: DecisionRecord, score: float, router: Router) -> float:
    """The decision's reward with ``score`` as its quality."""
    weights, _ = router.weights_for(record.agent)
    observation = Observation(
        success=True,
        quality=score,
        latency_s=record.latency_s,
        ttft_s=record.ttft_s,
        cost_usd=record.cost_usd,
    )
    return reward(observation, weights)


def correction(policy: Policy, record: DecisionRecord, new: float) -> list[Delta]:
    """The policy's deltas for ``new`` minus those for the applied reward (zero ones dropped)."""
    if new == record.applied:
        return []
    request = DecisionRequest(record.agent, record.context, record.candidates)
    plus = policy.deltas(request, record.model, new)
    minus = policy.deltas(request, record.model, record.applied)
    return _difference(plus, minus)


def _difference(plus: Sequence[Delta], minus: Sequence[Delta]) -> list[Delta]:
    removed = {(d.table, d.model): d for d in minus}
    out = []
    for d in plus:
        old = removed.get((d.table, d.model))
        s = d.successes - (old.successes if old else 0.0)
        f = d.failures - (old.failures if old else 0.0)
        if s != 0.0 or f != 0.0:
            out.append(Delta(d.table, d.model, s, f))
    return out


async def credit_workflow(
    backend: TrackingBackend, router: Router, store: PosteriorStore, workflow_id: str, score: float
) -> tuple[list[Credit], list[str]] | None:
    """Apply ``score`` to every answered decision of a workflow: (credits, ids skipped
    because their record is gone or they had no answer); None if the workflow is unknown."""
    raw = await backend.workflow(workflow_id)
    if raw is None:
        return None
    credits: list[Credit] = []
    skipped: list[str] = []
    for request_id in dict.fromkeys(raw.request_ids):
        credit = await credit_request(backend, router, store, request_id, score)
        if credit is None:
            skipped.append(request_id)
        else:
            credits.append(credit)
    return credits, skipped
