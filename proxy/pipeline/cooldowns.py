"""Models resting after a 429, honouring Retry-After: this process's rests, and with Redis
every process's (storage.redis.cooldown_sync, shared off the request path)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

DEFAULT_COOLDOWN_S = 5.0
MAX_COOLDOWN_S = 300.0


class SharedRests(Protocol):
    """Rests shared with other processes, in wall-clock time."""

    def rest(self, model: str, until: float) -> None:
        """Tell the others ``model`` rests until ``until`` (without waiting for Redis)."""
        ...

    def until(self, model: str) -> float | None:
        """When the longest rest of ``model`` known from any process ends, or None."""
        ...


class Cooldowns:
    """Which models are resting until when: here (monotonic seconds) or, through ``shared``,
    anywhere (wall clock, ``wall``)."""

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
        self._until: dict[str, float] = {}

    def rest(self, model: str, seconds: float | None) -> None:
        delay = min(max(DEFAULT_COOLDOWN_S if seconds is None else seconds, 0.0), MAX_COOLDOWN_S)
        self._until[model] = self._clock() + delay
        if self._shared is not None:
            self._shared.rest(model, self._wall() + delay)

    def resting(self, model: str) -> bool:
        return self._resting_here(model) or self._resting_elsewhere(model)

    def _resting_here(self, model: str) -> bool:
        until = self._until.get(model)
        if until is None:
            return False
        if until <= self._clock():
            del self._until[model]
            return False
        return True

    def _resting_elsewhere(self, model: str) -> bool:
        if self._shared is None:
            return False
        until = self._shared.until(model)
        return until is not None and until > self._wall()
