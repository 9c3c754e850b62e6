"""Run-time state of one simulator app: profiles, scripts, request log, counters, randomness."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from proxy.simulator.profile import SimProfile

STAT_KEYS = ("requests", "completed", "errors", "cancelled")


@dataclass
class SimState:
    """Mutable simulator state; one instance per app, kept on ``app.state.sim``."""

    initial_profiles: Mapping[str, SimProfile]
    initial_default: SimProfile
    seed: int | None
    profiles: dict[str, SimProfile] = field(default_factory=dict)
    default: SimProfile = field(default_factory=SimProfile)
    scripts: dict[str, deque[SimProfile]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    counter: int = 0

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Back to the profiles and seed the app was created with; log, scripts, stats empty."""
        self.profiles = dict(self.initial_profiles)
        self.default = self.initial_default
        self.scripts.clear()
        self.requests.clear()
        self.stats.clear()
        self.rng = random.Random(self.seed)
        self.counter = 0

    def profile_for(self, model: str) -> SimProfile:
        """The model's standing profile (the default profile for unknown models)."""
        return self.profiles.get(model, self.default)

    def next_profile(self, model: str) -> SimProfile:
        """The behaviour of the model's next request: a queued script step, else its profile."""
        queue = self.scripts.get(model)
        return queue.popleft() if queue else self.profile_for(model)

    def enqueue(self, model: str, steps: list[SimProfile]) -> int:
        """Queue one-shot steps for ``model``; returns the queue length."""
        queue = self.scripts.setdefault(model, deque())
        queue.extend(steps)
        return len(queue)

    def should_fail(self, profile: SimProfile) -> bool:
        """Draw from the seeded rng whether this request fails."""
        rate = profile.error_rate
        return rate >= 1.0 or (rate > 0.0 and self.rng.random() < rate)

    def next_id(self) -> str:
        """A fresh completion id, deterministic per app run."""
        self.counter += 1
        return f"chatcmpl-sim{self.counter}"

    def count(self, model: str, key: str) -> None:
        """Increment counter ``key`` (one of STAT_KEYS) of ``model``."""
        row = self.stats.setdefault(model, dict.fromkeys(STAT_KEYS, 0))
        row[key] += 1
