"""Requests and tokens per minute sent to each model, against its deployment's ``rpm``/``tpm``.

Counted over a sliding 60 s window: by this process alone, or, with Redis, by every process
(storage.redis.usage_sync, synchronised every ``redis.usage_sync_s`` off the request path; this
process's own window while Redis fails). An attempt counts one request and the prompt's
estimated tokens when it is sent; the answer's completion tokens are added when the request
finishes. A model at either limit is skipped like one resting after a 429 (the
next-ranked model answers); models without limits cost nothing here.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from proxy.config.settings import Arm
from proxy.pipeline.outcome import Outcome
from storage.redis.usage_sync import SharedUsage

WINDOW_S = 60.0


class _Window:
    """(time, amount) events of the last WINDOW_S seconds and their running sum."""

    __slots__ = ("events", "total")

    def __init__(self) -> None:
        self.events: deque[tuple[float, int]] = deque()
        self.total = 0

    def add(self, now: float, amount: int) -> None:
        self.events.append((now, amount))
        self.total += amount

    def current(self, now: float) -> int:
        events = self.events
        while events and events[0][0] <= now - WINDOW_S:
            self.total -= events.popleft()[1]
        return self.total


class UsageLimits:
    """Per-model minute windows of requests and tokens (only for models with limits)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, shared: SharedUsage | None = None
    ) -> None:
        self._clock = clock
        self._shared = shared
        self._requests: dict[str, _Window] = {}
        self._tokens: dict[str, _Window] = {}
        self._tpm_models: set[str] = set()

    def full(self, arm: Arm) -> bool:
        """Whether ``arm`` is at its rpm or tpm for the last minute."""
        if arm.rpm is None and arm.tpm is None:
            return False
        now = self._clock()
        if arm.rpm is not None and self._used(self._requests, arm.name, "requests", now) >= arm.rpm:
            return True
        return arm.tpm is not None and self._used(self._tokens, arm.name, "tokens", now) >= arm.tpm

    def _used(self, windows: dict[str, _Window], model: str, kind: str, now: float) -> float:
        """Every process's usage when the shared estimate is fresh, else this process's."""
        if self._shared is not None:
            shared = self._shared.estimate(model, kind)
            if shared is not None:
                return shared
        return self._window(windows, model).current(now)

    def sent(self, arm: Arm, prompt_tokens: int) -> None:
        """Count an attempt sent to ``arm`` with about ``prompt_tokens`` of prompt."""
        if arm.rpm is None and arm.tpm is None:
            return
        now = self._clock()
        if arm.rpm is not None:
            self._window(self._requests, arm.name).add(now, 1)
            self._share(arm.name, "requests", 1)
        if arm.tpm is not None:
            self._tpm_models.add(arm.name)
            self._window(self._tokens, arm.name).add(now, max(prompt_tokens, 0))
            self._share(arm.name, "tokens", max(prompt_tokens, 0))

    def answered(self, outcome: Outcome) -> None:
        """Add a finished request's completion tokens to its model's token window."""
        model, summary = outcome.model, outcome.summary
        if model in self._tpm_models and summary is not None:
            tokens = max(int(summary.usage.completion_tokens or 0), 0)
            self._window(self._tokens, model).add(self._clock(), tokens)
            self._share(model, "tokens", tokens)

    def _share(self, model: str, kind: str, amount: int) -> None:
        if self._shared is not None:
            self._shared.add(model, kind, amount)

    @staticmethod
    def _window(windows: dict[str, _Window], model: str) -> _Window:
        window = windows.get(model)
        if window is None:
            window = windows[model] = _Window()
        return window
