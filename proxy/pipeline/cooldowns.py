"""Models resting, each with its reason: after a 429 (honouring Retry-After), or after an error
of the deployment's own configuration or credentials (FailureKind.rests_model). This process's
rests, and with Redis every process's (storage.redis.cooldown_sync, shared off the request path)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

DEFAULT_COOLDOWN_S = 5.0
MAX_COOLDOWN_S = 300.0
CONFIG_REST_S = 60.0
"""How long a model whose configuration or credentials failed stays out of routing."""
RATE_LIMITED = "rate_limited"


class SharedRests(Protocol):
    """Rests shared with other processes, in wall-clock time."""

    def rest(self, model: str, until: float) -> None:
        """Tell the others ``model`` rests until ``until`` (without waiting for Redis)."""
        ...

    def until(self, model: str) -> float | None:
        """When the longest rest of ``model`` known from any process ends, or None."""
        ...


@dataclass(frozen=True, slots=True)
class Rest:
    until: float
    """Monotonic seconds."""
    reason: str


class Cooldowns:
    """Which models are resting until when, and why: here (monotonic seconds) or, through
    ``shared``, anywhere (wall clock, ``wall``)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        shared: SharedRests | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._shared = shared
        self._wall = wall
        self._rests: dict[str, Rest] = {}

    def rest(self, model: str, seconds: float | None, reason: str = RATE_LIMITED) -> None:
        delay = min(max(DEFAULT_COOLDOWN_S if seconds is None else seconds, 0.0), MAX_COOLDOWN_S)
        self._rests[model] = Rest(self._clock() + delay, reason)
        if self._shared is not None:
            self._shared.rest(model, self._wall() + delay)

    def resting(self, model: str) -> bool:
        return self._resting_here(model) or self._resting_elsewhere(model)

    def resting_models(self) -> dict[str, dict[str, object]]:
        """``{model: {"reason", "until"}}`` of this process's rests now (``until`` in wall seconds)."""
        now, wall_now = self._clock(), self._wall()
        return {
            model: {"reason": rest.reason, "until": round(wall_now + rest.until - now, 3)}
            for model, rest in self._rests.items()
            if rest.until > now
        }

    def _resting_here(self, model: str) -> bool:
        rest = self._rests.get(model)
        if rest is None:
            return False
        if rest.until <= self._clock():
            del self._rests[model]
            return False
        return True

    def _resting_elsewhere(self, model: str) -> bool:
        if self._shared is None:
            return False
        until = self._shared.until(model)
        return until is not None and until > self._wall()
