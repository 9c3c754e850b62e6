"""Everything a request needs, built once per app in the lifespan (no module-level state)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from policies.base import PosteriorStore
from proxy.config.settings import Config
from proxy.forwarding.base import Upstream
from proxy.pipeline.access_log import AccessLog
from proxy.pipeline.agents import AgentAdmission
from proxy.pipeline.cooldowns import Cooldowns
from proxy.pipeline.learning import Learner
from proxy.pipeline.request_metrics import RequestMetrics
from proxy.pipeline.router import Router
from proxy.pipeline.usage_limits import UsageLimits


@dataclass(slots=True)
class Counters:
    """Process-local counts an operator wants to see in /ready and logs."""

    store_unavailable_reads: int = 0
    requests: int = 0


@dataclass(slots=True)
class Services:
    """What the request flow uses, built once per app.

    ``clock`` is wall time, only for timestamps that are stored; ``monotonic`` measures every
    duration of a request (deadlines, latencies, time to first chunk, overhead).
    """

    config: Config
    router: Router
    store: PosteriorStore
    upstream: Upstream
    learner: Learner
    rng: random.Random
    clock: Callable[[], float]
    agents: AgentAdmission
    monotonic: Callable[[], float] = time.perf_counter
    cooldowns: Cooldowns = field(default_factory=Cooldowns)
    limits: UsageLimits = field(default_factory=UsageLimits)
    counters: Counters = field(default_factory=Counters)
    access: AccessLog = field(default_factory=AccessLog)
    request_metrics: RequestMetrics = field(default_factory=RequestMetrics)
    unhealthy: dict[str, str] = field(default_factory=dict)
    """Models a health probe took out of routing, with the reason (proxy.pipeline.health)."""
