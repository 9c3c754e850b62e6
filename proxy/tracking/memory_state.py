"""What the in-process tracking backend holds, and what a JSON tracking file holds (tracking_file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from proxy.tracking.backend import WorkflowRaw
from proxy.tracking.records import DecisionRecord


@dataclass(slots=True)
class Expiring:
    """A stored workflow and the time it expires."""

    expires: float
    workflow: WorkflowRaw = field(default_factory=WorkflowRaw)


@dataclass(slots=True)
class TrackingState:
    """Stats counters per agent, workflows, recent-workflow indexes, decision records,
    per-minute counters and recent decisions per agent.

    ``workflows`` and ``decisions`` are insertion-ordered with the soonest expiry first (an
    entry moves to the end when written); ``recent`` maps an agent (None: every agent) to
    workflow -> last seen, newest last.
    """

    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    workflows: dict[str, Expiring] = field(default_factory=dict)
    recent: dict[str | None, dict[str, float]] = field(default_factory=dict)
    decisions: dict[str, tuple[float, DecisionRecord]] = field(default_factory=dict)
    timeline: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)
    """Agent -> minute -> ``<model>|<metric>`` -> amount (oldest minute first)."""
    recent_decisions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Agent -> its newest decisions, newest first."""
