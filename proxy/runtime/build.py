"""open_runtime: everything a running proxy holds, built and closed in one place.

The app's lifespan and the in-process ModelManager both serve from a Runtime: the storage
(State), the forwarder, the Services the request flow uses and the Tracker. ``services``
and ``tracker`` are the current generation; a reload (proxy.runtime.reload) replaces both at once,
and a request keeps the Services it started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from proxy.config.settings import Config
from proxy.forwarding.base import Embedder, Upstream, Usage
from proxy.pipeline.agents import AgentAdmission
from proxy.pipeline.cooldowns import Cooldowns
from proxy.pipeline.learning import CostFn, Learner, no_cost
from proxy.pipeline.router import Router
from proxy.pipeline.services import Services
from proxy.pipeline.usage_limits import UsageLimits
from proxy.runtime.state import State, open_state
from proxy.tracking.tracker import Tracker

if TYPE_CHECKING:
    from proxy.forwarding.forwarder import Forwarder

log = logging.getLogger("model_manager")
RETIRE_GRACE_S = 5.0
"""Extra seconds a replaced generation's forwarder stays open after the request deadline."""


@dataclass(frozen=True, slots=True)
class Generation:
    """One config's request-side objects: its Services, Tracker and forwarder."""

    services: Services
    tracker: Tracker
    forwarder: Forwarder


class Runtime:
    """The storage shared by every generation and the current generation.

    ``replace(config)`` starts the next generation and swaps it in with one assignment; the
    one it replaces keeps serving the requests that hold it, and its forwarder closes
    ``RETIRE_GRACE_S`` after the longest a request may take (``router.deadline_s``), or when
    the runtime closes.
    """

    def __init__(self, state: State, current: Generation, *, upstream: Upstream | None) -> None:
        self.state = state
        self.current = current
        self.upstream = upstream
        self._retiring: set[asyncio.Task[None]] = set()

    async def replace(self, config: Config) -> Generation:
        """Serve ``config`` from now on (raises ConfigError, keeping the current one, when
        its router cannot be built). Learning, cooldowns, usage limits and counters carry over."""
        router = Router(config)
        forwarder = new_forwarder(config)
        await forwarder.start()
        old = self.current
        services = dataclasses.replace(
            old.services, config=config, router=router, upstream=self.upstream or forwarder
        )
        services.learner.retarget(router, pricing(config, forwarder) if self.upstream is None else no_cost)
        tracker = Tracker(
            self.state.tracking,
            config=config,
            router=router,
            store=self.state.posteriors,
            clock=services.clock,
        )
        self.current = Generation(services, tracker, forwarder)
        self._retire(old, old.services.config.router.deadline_s + RETIRE_GRACE_S)
        return self.current

    def _retire(self, old: Generation, after_s: float) -> None:
        task = asyncio.get_running_loop().create_task(_close_later(old.forwarder, after_s))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def close(self) -> None:
        """Learning drained, then every forwarder closed."""
        await self.services.learner.drain()
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        await self.current.forwarder.close()

    @property
    def services(self) -> Services:
        return self.current.services

    @property
    def tracker(self) -> Tracker:
        return self.current.tracker

    @property
    def config(self) -> Config:
        return self.current.services.config

    @property
    def embedder(self) -> Embedder:
        return self.current.forwarder


@contextlib.asynccontextmanager
async def open_runtime(
    config: Config,
    *,
    state: State | None = None,
    upstream: Upstream | None = None,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[Runtime]:
    """A started Runtime for ``config``; closed (learning drained first) on exit.

    ``state`` defaults to ``open_state(config, clock)`` and the chat upstream to the
    Forwarder; a given ``upstream`` is the caller's to start and close, and has no pricing.
    """
    stored = state or open_state(config, clock)
    forwarder = new_forwarder(config)
    services = first_services(
        config, stored, forwarder, upstream=upstream, rng=rng or random.Random(), clock=clock
    )
    tracker = Tracker(
        stored.tracking, config=config, router=services.router, store=stored.posteriors, clock=clock
    )
    services.learner.batch_hooks.append(tracker.hook_many)
    await stored.start()
    await forwarder.start()
    runtime = Runtime(stored, Generation(services, tracker, forwarder), upstream=upstream)
    for notice in config.notices:
        log.warning("config: LiteLLM key %s", notice)
    log.info("model-manager ready: %d models, policy %s", len(config.arms), config.router.policy)
    try:
        yield runtime
    finally:
        await runtime.close()
        await stored.close()


async def _close_later(forwarder: Forwarder, after_s: float) -> None:
    """Close a retired forwarder once no request can still be using it (or on cancel)."""
    try:
        await asyncio.sleep(after_s)
    finally:
        await forwarder.close()


def new_forwarder(config: Config) -> Forwarder:
    """The forwarding layer: chat (unless another upstream is given) and embeddings."""
    from proxy.forwarding.forwarder import Forwarder  # litellm is imported at start, not at import

    return Forwarder(config)


def first_services(
    config: Config,
    state: State,
    forwarder: Forwarder,
    *,
    upstream: Upstream | None,
    rng: random.Random,
    clock: Callable[[], float],
) -> Services:
    """The first generation's Services; later ones share its learner, cooldowns and limits."""
    router = Router(config)
    cost = pricing(config, forwarder) if upstream is None else no_cost
    propensity = config.router.propensity_samples > 0
    learner = Learner(router, state.posteriors, rng, propensity=propensity, cost=cost)
    return Services(
        config=config,
        router=router,
        store=state.posteriors,
        upstream=upstream or forwarder,
        learner=learner,
        rng=rng,
        clock=clock,
        agents=AgentAdmission(config),
        cooldowns=Cooldowns(shared=state.cooldowns),
        limits=UsageLimits(shared=state.usage),
    )


def pricing(config: Config, forwarder: Forwarder) -> CostFn:
    """The forwarder's cost function by model name (None for a model not in ``config``)."""

    async def by_name(model: str, usage: Usage) -> float | None:
        arm = config.arms.get(model)
        return None if arm is None else await forwarder.cost(arm, usage)

    return by_name
