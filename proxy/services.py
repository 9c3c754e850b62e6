"""Everything a request needs, built once per app in the lifespan (no module-level state)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from policies.base import PosteriorStore
from proxy.completion import ChunkStream, Completion
from proxy.config import Arm, Config
from proxy.cooldowns import Cooldowns
from proxy.learning import Learner
from proxy.router import Router
from proxy.usage_limits import UsageLimits

if TYPE_CHECKING:
    from proxy.tracking.tracker import Tracker


class Upstream(Protocol):
    """The forwarding seam: litellm, or a direct OpenAI-wire client."""

    async def complete(self, arm: Arm, body: dict[str, Any], timeout: float) -> Completion: ...

    async def open_stream(
        self, arm: Arm, body: dict[str, Any], *, first_chunk_timeout: float, timeout: float
    ) -> ChunkStream: ...


@dataclass(slots=True)
class Counters:
    """Process-local counts an operator wants to see in /ready and logs."""

    store_unavailable_reads: int = 0
    requests: int = 0


@dataclass(slots=True)
class Services:
    config: Config
    router: Router
    store: PosteriorStore
    upstream: Upstream
    learner: Learner
    rng: random.Random
    clock: Callable[[], float]
    cooldowns: Cooldowns = field(default_factory=Cooldowns)
    limits: UsageLimits = field(default_factory=UsageLimits)
    counters: Counters = field(default_factory=Counters)
    tracker: Tracker | None = None
    """Stats, workflows and feedback (proxy.tracking); set in the lifespan."""
