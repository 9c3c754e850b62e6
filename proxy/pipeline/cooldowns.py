"""Models resting after a 429, honouring Retry-After, per process."""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_COOLDOWN_S = 5.0
MAX_COOLDOWN_S = 300.0


class Cooldowns:
    """Which models are resting until when (monotonic seconds)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[str, float] = {}

    def rest(self, model: str, seconds: float | None) -> None:
        delay = DEFAULT_COOLDOWN_S if seconds is None else seconds
        self._until[model] = self._clock() + min(max(delay, 0.0), MAX_COOLDOWN_S)

    def resting(self, model: str) -> bool:
        until = self._until.get(model)
        if until is None:
            return False
        if until <= self._clock():
            del self._until[model]
            return False
        return True
