"""What the demo shows: each agent's first-choice shares over its last N requests, and the
fallbacks and failures, from the proxy's own ``GET /v1/stats`` counters plus what the
clients saw.

``decisions`` (first choices) are cumulative in /v1/stats; ``Window`` keeps snapshots of
them so a share covers the agent's most recent ``size`` requests (to the snapshot nearest
that many back), which is where convergence shows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from proxy.cli.demo.traffic import CallResult

MODEL_COUNTERS = ("calls", "successes", "failures", "fallbacks", "decisions")


@dataclass
class ClientCounts:
    """One agent's calls as its clients saw them."""

    requests: int = 0
    ok: int = 0
    failed: int = 0
    fell_back: int = 0
    streamed: int = 0

    def add(self, result: CallResult) -> None:
        self.requests += 1
        self.ok += result.ok
        self.failed += not result.ok
        self.fell_back += result.ok and result.attempts > 1
        self.streamed += result.streamed


@dataclass
class Window:
    """Snapshots of one agent's cumulative first choices, oldest first."""

    size: int
    snapshots: deque[tuple[int, dict[str, int]]] = field(default_factory=deque)

    def add(self, total: int, decisions: Mapping[str, int]) -> None:
        """Record the agent's totals now (drops snapshots no longer needed for the window)."""
        self.snapshots.append((total, dict(decisions)))
        while len(self.snapshots) > 2 and self.snapshots[1][0] <= total - self.size:
            self.snapshots.popleft()

    def shares(self) -> dict[str, float]:
        """Share of each model among the first choices since the window's start snapshot."""
        if not self.snapshots:
            return {}
        total, latest = self.snapshots[-1]
        base_total, base = self._base(total)
        span = total - base_total
        if span <= 0:
            return {}
        return {model: (count - base.get(model, 0)) / span for model, count in latest.items()}

    def _base(self, total: int) -> tuple[int, dict[str, int]]:
        """The newest snapshot at least ``size`` requests back, else zero (the run's start)."""
        for snapshot_total, decisions in reversed(self.snapshots):
            if snapshot_total <= total - self.size:
                return snapshot_total, decisions
        return 0, {}


@dataclass
class Tally:
    """Everything the live table and the summary show, for the demo's agents and models."""

    agents: Mapping[str, tuple[str, ...]]
    window: int
    clients: dict[str, ClientCounts] = field(default_factory=dict)
    windows: dict[str, Window] = field(default_factory=dict)
    models: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for agent in self.agents:
            self.clients[agent] = ClientCounts()
            self.windows[agent] = Window(self.window)

    def record(self, result: CallResult) -> None:
        """Count one call a client made."""
        self.clients[result.agent].add(result)

    def observe(self, stats: Mapping[str, Any]) -> None:
        """Take in one ``GET /v1/stats`` body."""
        for row in stats.get("agents", []):
            agent = row.get("agent")
            if agent not in self.windows:
                continue
            counters = {m["model"]: {k: int(m.get(k, 0)) for k in MODEL_COUNTERS} for m in row["models"]}
            self.models[agent] = counters
            decisions = {model: c["decisions"] for model, c in counters.items()}
            self.windows[agent].add(sum(decisions.values()), decisions)

    def settled(self) -> bool:
        """True when /v1/stats has a first choice for every call the clients made."""
        return all(
            sum(self.counter(agent, model, "decisions") for model in models) >= self.clients[agent].requests
            for agent, models in self.agents.items()
        )

    def shares(self, agent: str) -> dict[str, float]:
        """The agent's first-choice share per model over its last ``window`` requests."""
        found = self.windows[agent].shares()
        return {model: found.get(model, 0.0) for model in self.agents[agent]}

    def counter(self, agent: str, model: str, name: str) -> int:
        """A /v1/stats counter of (agent, model), 0 before it is seen."""
        return self.models.get(agent, {}).get(model, {}).get(name, 0)

    def preferred(self, agent: str) -> str | None:
        """The model with the largest recent share (None before any request)."""
        shares = self.shares(agent)
        best = max(shares, key=lambda m: shares[m], default=None)
        return best if best is not None and shares[best] > 0 else None

    def summary(self) -> dict[str, Any]:
        """The JSON summary ``--json`` prints at the end."""
        return {
            "agents": {
                agent: {
                    "requests": self.clients[agent].requests,
                    "ok": self.clients[agent].ok,
                    "failed": self.clients[agent].failed,
                    "fell_back": self.clients[agent].fell_back,
                    "streamed": self.clients[agent].streamed,
                    "preferred": self.preferred(agent),
                    "models": {
                        model: {
                            "recent_share": round(share, 4),
                            **{name: self.counter(agent, model, name) for name in MODEL_COUNTERS},
                        }
                        for model, share in self.shares(agent).items()
                    },
                }
                for agent in self.agents
            },
            "window": self.window,
        }
