"""Turning outcomes into learning, off the response path, exactly once per request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from policies.base import Delta, PosteriorStore
from policies.quality import QualityInput, assess_quality
from policies.reward import Observation, reward
from proxy.forwarding.base import Usage
from proxy.pipeline.outcome import Attempt, Outcome, Status
from proxy.pipeline.router import Router
from proxy.pipeline.settling import IN_FLIGHT_WAIT_S, Settling

log = logging.getLogger("model_manager.learning")


@dataclass(frozen=True, slots=True)
class Scored:
    """What learning made of one outcome: each attempted model's reward, the answer's cost
    (USD, when known), the propensity of the policy's choice, and the answer's heuristic
    quality (None without an answer)."""

    outcome: Outcome
    rewards: Mapping[str, float]
    cost_usd: float | None = None
    propensity: float | None = None
    quality: float | None = None


OutcomeHook = Callable[[Scored], Awaitable[None]]
"""Called after the store write with each scored outcome."""

BatchHook = Callable[[list[Scored]], Awaitable[None]]
"""Called after the store write with every scored outcome of a batch (one write for all)."""

MAX_BATCH = 256
"""Outcomes learned from together: one store write and one hook call for all of them."""

LINGER_S = 0.01
"""How long the writer waits after the first queued outcome for others to join its batch:
learning lags by at most this, and a steady stream of requests shares writes even at
concurrency 1 (each write costs far more than the outcome it carries)."""

CostFn = Callable[[str, Usage], Awaitable[float | None]]
"""USD for a call to the named model with that usage (None when unknown)."""


async def no_cost(model: str, usage: Usage) -> float | None:
    return None


class Learner:
    """Scores outcomes, writes the policy's deltas, then runs the hooks (stats, workflows).

    ``submit`` queues an outcome for one writer task, which learns from everything queued
    so far together: under load, many outcomes share one store round trip (write-behind).
    Outcomes are learned from in submission order. The store write and the hooks are
    separate steps: ``failed_writes`` counts outcomes whose deltas were not written,
    ``hook_failures`` the hook calls that raised. ``settled()`` is the read-your-writes
    barrier of the tracking endpoints (proxy.pipeline.settling).
    """

    def __init__(
        self,
        router: Router,
        store: PosteriorStore,
        rng: random.Random,
        *,
        propensity: bool = True,
        cost: CostFn = no_cost,
        linger_s: float = LINGER_S,
    ) -> None:
        self._router, self._store, self._rng = router, store, rng
        self._linger_s = linger_s
        self._cost = cost
        self._propensity = propensity
        self._queue: deque[Outcome] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._writer: asyncio.Task[None] | None = None
        self._settling = Settling()
        self.hooks: list[OutcomeHook] = []
        self.batch_hooks: list[BatchHook] = []
        self.submitted = 0
        self.recorded = 0
        self.failed_writes = 0
        self.hook_failures = 0

    def retarget(self, router: Router, cost: CostFn) -> None:
        """Score outcomes learned from now on with ``router``'s weights and policies and
        ``cost`` (a config reload); the queue, counters and hooks stay."""
        self._router, self._cost = router, cost

    def submit(self, outcome: Outcome) -> None:
        """Queue ``outcome`` for the writer task (started on first use); costs a deque append."""
        self.submitted += 1
        self._settling.queued()
        self._queue.append(outcome)
        self._idle.clear()
        self._wake.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def begin(self, request_id: str) -> None:
        """``request_id`` was decided; its outcome will be submitted (``settled`` waits for it)."""
        self._settling.begin(request_id)

    async def settled(self, request_id: str | None = None, *, wait_s: float = IN_FLIGHT_WAIT_S) -> None:
        """Return once every outcome submitted before the call is learned from (its deltas
        written and its hooks run: a read after this sees the request's records); for a
        ``request_id`` still in flight, first wait (at most ``wait_s``) for it."""
        await self._settling.settled(request_id, wait_s=wait_s)

    async def record(self, outcome: Outcome) -> None:
        """Learn from ``outcome`` now; never raises (failures are logged and counted)."""
        await self.record_batch([outcome])

    async def record_batch(self, outcomes: list[Outcome]) -> None:
        """Score ``outcomes``, write their deltas in one store write, then run the hooks;
        never raises."""
        try:
            scored = [await self.score(outcome) for outcome in outcomes]
        except Exception:
            self.failed_writes += len(outcomes)
            log.exception("could not score %d outcomes", len(outcomes))
        else:
            await self._write(scored)
            await self._run_hooks(scored)
        self.recorded += len(outcomes)

    async def score(self, outcome: Outcome) -> Scored:
        """The outcome's cost, propensity, quality and rewards (nothing for a cancelled one)."""
        if outcome.status is Status.CANCELLED:
            return Scored(outcome, {})
        quality = self._quality(outcome)
        cost = await self._price(outcome)
        rewards = self._rewards(outcome, quality, cost)
        return Scored(outcome, rewards, cost, self._propensity_of(outcome), quality)

    async def _write(self, scored: list[Scored]) -> None:
        try:
            await self._store.apply([delta for item in scored for delta in self._deltas(item)])
        except Exception:
            self.failed_writes += len(scored)
            log.exception("could not write the deltas of %d outcomes", len(scored))

    async def _run_hooks(self, scored: list[Scored]) -> None:
        for batch_hook in self.batch_hooks:
            await self._guarded(batch_hook(scored))
        for item in scored:
            for hook in self.hooks:
                await self._guarded(hook(item))

    async def _guarded(self, call: Awaitable[None]) -> None:
        try:
            await call
        except Exception:
            self.hook_failures += 1
            log.exception("a learner hook failed")

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            await self._settling.linger(self._linger_s)
            self._wake.clear()
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_BATCH))]
                await self.record_batch(batch)
                self._settling.done(len(batch), (outcome.request_id for outcome in batch))
            self._idle.set()

    async def drain(self) -> None:
        """Wait until every submitted outcome is learned from, then stop the writer."""
        if self._writer is not None and not self._writer.done():
            await self._idle.wait()
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    def _rewards(self, outcome: Outcome, quality: float | None, cost: float | None) -> dict[str, float]:
        """Reward per attempted model: 0 for a model at fault, scored for the answer."""
        rewards: dict[str, float] = {}
        for attempt in outcome.attempts:
            if attempt.failure is None:
                rewards[attempt.model] = self._reward(outcome, attempt, quality, cost)
            elif attempt.failure.model_at_fault:
                rewards[attempt.model] = 0.0
        return rewards

    def _quality(self, outcome: Outcome) -> float | None:
        if outcome.status is not Status.SUCCESS:
            return None
        _, weights = self._router.weights_for(outcome.agent)
        return assess_quality(quality_input(outcome), weights)

    async def _price(self, outcome: Outcome) -> float | None:
        if outcome.summary is None or outcome.model is None:
            return None
        return await self._cost(outcome.model, outcome.summary.usage)

    def _deltas(self, scored: Scored) -> Iterator[Delta]:
        outcome = scored.outcome
        policy = self._router.policy_for(outcome.agent)
        for model, value in scored.rewards.items():
            yield from policy.deltas(outcome.decision_request, model, value, outcome.snapshot)

    def _reward(self, outcome: Outcome, attempt: Attempt, quality: float | None, cost: float | None) -> float:
        reward_weights, _ = self._router.weights_for(outcome.agent)
        observation = Observation(
            success=True,
            quality=1.0 if quality is None else quality,
            latency_s=attempt.latency_s,
            ttft_s=attempt.ttft_s,
            cost_usd=cost,
        )
        return reward(observation, reward_weights)

    def _propensity_of(self, outcome: Outcome) -> float | None:
        if not self._propensity:
            return None
        policy = self._router.policy_for(outcome.agent)
        decision = outcome.decision
        return policy.propensity(
            outcome.decision_request, outcome.snapshot, decision.choice, self._rng, decision
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
