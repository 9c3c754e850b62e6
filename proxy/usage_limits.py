"""Requests and tokens per minute sent to each model, against its deployment's ``rpm``/``tpm``.

Counted per process over a sliding 60 s window, like LiteLLM's router without Redis: with N
replicas, give each deployment its limit divided by N. An attempt counts one request and
the prompt's estimated tokens when it is sent; the answer's completion tokens are added
when the outcome is learned. A model at either limit is skipped like one resting after a
429 (the next-ranked model answers); models without limits cost nothing here.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from proxy.config import Arm
from proxy.outcome import Outcome

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

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._requests: dict[str, _Window] = {}
        self._tokens: dict[str, _Window] = {}
        self._tpm_models: set[str] = set()

    def full(self, arm: Arm) -> bool:
        """Whether ``arm`` is at its rpm or tpm for the last minute."""
        if arm.rpm is None and arm.tpm is None:
            return False
        now = self._clock()
        if arm.rpm is not None and self._window(self._requests, arm.name).current(now) >= arm.rpm:
            return True
        return arm.tpm is not None and self._window(self._tokens, arm.name).current(now) >= arm.tpm

    def sent(self, arm: Arm, prompt_tokens: int) -> None:
        """Count an attempt sent to ``arm`` with about ``prompt_tokens`` of prompt."""
        now = self._clock()
        if arm.rpm is not None:
            self._window(self._requests, arm.name).add(now, 1)
        if arm.tpm is not None:
            self._tpm_models.add(arm.name)
            self._window(self._tokens, arm.name).add(now, max(prompt_tokens, 0))

    async def learned(self, outcome: Outcome, rewards: dict[str, float]) -> None:
        """Learner hook: add the answer's completion tokens to its model's token window."""
        model, summary = outcome.model, outcome.summary
        if model in self._tpm_models and summary is not None:
            tokens = summary.usage.completion_tokens
            self._window(self._tokens, model).add(self._clock(), max(int(tokens or 0), 0))

    @staticmethod
    def _window(windows: dict[str, _Window], model: str) -> _Window:
        window = windows.get(model)
        if window is None:
            window = windows[model] = _Window()
        return window
