"""Turning outcomes into learning, off the response path, exactly once per request."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from policies.base import Delta, PosteriorStore
from policies.quality import QualityInput, assess_quality
from policies.reward import Observation, reward
from proxy.completion import Usage
from proxy.outcome import Attempt, Outcome, Status
from proxy.router import Router

log = logging.getLogger("model_manager.learning")

OutcomeHook = Callable[[Outcome, dict[str, float]], Awaitable[None]]
"""Called after learning with the outcome and each attempted model's reward."""

CostFn = Callable[[str, Usage], Awaitable[float | None]]
"""USD for a call to the named model with that usage (None when unknown)."""


async def no_cost(model: str, usage: Usage) -> float | None:
    return None


class Learner:
    """Scores outcomes, writes the policy's deltas, then runs the hooks (stats, workflows)."""

    def __init__(
        self,
        router: Router,
        store: PosteriorStore,
        rng: random.Random,
        *,
        propensity: bool = True,
        cost: CostFn = no_cost,
    ) -> None:
        self._router, self._store, self._rng = router, store, rng
        self._cost = cost
        self._propensity = propensity
        self._pending: set[asyncio.Task[None]] = set()
        self.hooks: list[OutcomeHook] = []
        self.recorded = 0
        self.failed_writes = 0

    def submit(self, outcome: Outcome) -> None:
        """Record ``outcome`` in the background; keeps the task until it is done."""
        task = asyncio.get_running_loop().create_task(self.record(outcome))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def record(self, outcome: Outcome) -> None:
        """Learn from ``outcome``; never raises (failures are logged and counted)."""
        try:
            await self._price(outcome)
            rewards = self.rewards(outcome)
            await self._store.apply(list(self._deltas(outcome, rewards)))
            for hook in self.hooks:
                await hook(outcome, rewards)
        except Exception:
            self.failed_writes += 1
            log.exception("could not record outcome of %s", outcome.request_id)
        self.recorded += 1

    def rewards(self, outcome: Outcome) -> dict[str, float]:
        """Reward per attempted model: 0 for a model at fault, scored for the answer."""
        if outcome.status is Status.CANCELLED:
            return {}
        self._estimate_propensity(outcome)
        rewards: dict[str, float] = {}
        for attempt in outcome.attempts:
            if attempt.failure is None:
                rewards[attempt.model] = self._score(outcome, attempt)
            elif attempt.failure.model_at_fault:
                rewards[attempt.model] = 0.0
        return rewards

    async def _price(self, outcome: Outcome) -> None:
        if outcome.cost_usd is None and outcome.summary is not None and outcome.model is not None:
            outcome.cost_usd = await self._cost(outcome.model, outcome.summary.usage)

    async def drain(self) -> None:
        """Wait for every submitted outcome (at shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def _deltas(self, outcome: Outcome, rewards: dict[str, float]) -> Iterator[Delta]:
        policy = self._router.policy_for(outcome.agent)
        for model, value in rewards.items():
            yield from policy.deltas(outcome.decision_request, model, value)

    def _score(self, outcome: Outcome, attempt: Attempt) -> float:
        reward_weights, quality_weights = self._router.weights_for(outcome.agent)
        observation = Observation(
            success=True,
            quality=assess_quality(quality_input(outcome), quality_weights),
            latency_s=attempt.latency_s,
            ttft_s=attempt.ttft_s,
            cost_usd=outcome.cost_usd,
        )
        return reward(observation, reward_weights)

    def _estimate_propensity(self, outcome: Outcome) -> None:
        if not self._propensity or outcome.propensity is not None:
            return
        policy = self._router.policy_for(outcome.agent)
        outcome.propensity = policy.propensity(
            outcome.decision_request, outcome.snapshot, outcome.decision.choice, self._rng
        )


def quality_input(outcome: Outcome) -> QualityInput:
    """What the quality heuristic looks at for this outcome's answer."""
    summary = outcome.summary
    if summary is None:
        return QualityInput(text=None, finish_reason=None)
    return QualityInput(
        text=summary.text,
        finish_reason=summary.finish_reason,
        tool_calls=tuple(summary.tool_calls),
        wants_json=outcome.wants_json,
        tool_schemas=outcome.tool_schemas,
    )


def tool_schemas(tools: Any) -> dict[str, dict[str, object]] | None:
    """Tool name -> JSON schema of its parameters, from a request's ``tools``."""
    if not isinstance(tools, list):
        return None
    schemas: dict[str, dict[str, object]] = {}
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            parameters = function.get("parameters")
            schemas[function["name"]] = parameters if isinstance(parameters, dict) else {}
    return schemas
