"""Models resting, per process: after a 429 (honouring Retry-After), or after an error of the
deployment's own configuration or credentials (FailureKind.rests_model), each with its reason."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_COOLDOWN_S = 5.0
MAX_COOLDOWN_S = 300.0
CONFIG_REST_S = 60.0
"""How long a model whose configuration or credentials failed stays out of routing."""
RATE_LIMITED = "rate_limited"


@dataclass(frozen=True, slots=True)
class Rest:
    until: float
    """Monotonic seconds."""
    reason: str


class Cooldowns:
    """Which models are resting until when (monotonic seconds), and why."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._rests: dict[str, Rest] = {}

    def rest(self, model: str, seconds: float | None, reason: str = RATE_LIMITED) -> None:
        delay = DEFAULT_COOLDOWN_S if seconds is None else seconds
        self._rests[model] = Rest(self._clock() + min(max(delay, 0.0), MAX_COOLDOWN_S), reason)

    def resting(self, model: str) -> bool:
        rest = self._rests.get(model)
        if rest is None:
            return False
        if rest.until <= self._clock():
            del self._rests[model]
            return False
        return True

    def resting_models(self, wall: Callable[[], float] = time.time) -> dict[str, dict[str, object]]:
        """``{model: {"reason", "until"}}`` of the models resting now (``until`` in wall seconds)."""
        now, wall_now = self._clock(), wall()
        return {
            model: {"reason": rest.reason, "until": round(wall_now + rest.until - now, 3)}
            for model, rest in self._rests.items()
            if rest.until > now
        }
