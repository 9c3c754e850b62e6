"""What the embedded tracking backend holds: plain data, copied for saving (tracking_file)."""

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


def detached_copy(state: TrackingState) -> TrackingState:
    """A copy no later write to ``state`` touches (records are frozen and shared)."""
    return TrackingState(
        stats={agent: dict(counts) for agent, counts in state.stats.items()},
        workflows={wf: _copy(entry) for wf, entry in state.workflows.items()},
        recent={scope: dict(recent) for scope, recent in state.recent.items()},
        decisions=dict(state.decisions),
        timeline={a: {m: dict(c) for m, c in series.items()} for a, series in state.timeline.items()},
        recent_decisions={agent: list(entries) for agent, entries in state.recent_decisions.items()},
    )


def _copy(entry: Expiring) -> Expiring:
    raw = entry.workflow
    return Expiring(entry.expires, WorkflowRaw(dict(raw.meta), dict(raw.counts), list(raw.request_ids)))
