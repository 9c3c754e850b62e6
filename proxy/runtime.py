"""open_runtime: everything a running proxy holds, built and closed in one place.

The app's lifespan and the in-process ModelManager both serve from a Runtime: the storage
(State), the forwarder, the Services the request flow uses and the Tracker. ``services``
and ``tracker`` are the current generation; a reload (proxy.reload) replaces both at once,
and a request keeps the Services it started with.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from proxy.config.settings import Config
from proxy.forwarding.base import Embedder, Upstream, Usage
from proxy.pipeline.cooldowns import Cooldowns
from proxy.pipeline.learning import CostFn, Learner, no_cost
from proxy.pipeline.router import Router
from proxy.pipeline.services import Services
from proxy.pipeline.usage_limits import UsageLimits
from proxy.state import State, open_state
from proxy.tracking.tracker import Tracker

if TYPE_CHECKING:
    from proxy.forwarding.forwarder import Forwarder

log = logging.getLogger("model_manager")


@dataclass(frozen=True, slots=True)
class Generation:
    """One config's request-side objects: its Services, Tracker and forwarder."""

    services: Services
    tracker: Tracker
    forwarder: Forwarder


class Runtime:
    """The storage shared by every generation and the current generation."""

    def __init__(self, state: State, current: Generation, *, upstream: Upstream | None) -> None:
        self.state = state
        self.current = current
        self.upstream = upstream

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
        await runtime.services.learner.drain()
        await runtime.current.forwarder.close()
        await stored.close()


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
        cooldowns=Cooldowns(),
        limits=UsageLimits(shared=state.usage),
    )


def pricing(config: Config, forwarder: Forwarder) -> CostFn:
    """The forwarder's cost function by model name (None for a model not in ``config``)."""

    async def by_name(model: str, usage: Usage) -> float | None:
        arm = config.arms.get(model)
        return None if arm is None else await forwarder.cost(arm, usage)

    return by_name
