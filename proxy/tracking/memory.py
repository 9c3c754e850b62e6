"""MemoryTracking: the tracking backend in process memory (single process, nothing persisted).

Same semantics as RedisTracking and SqliteTracking: workflows expire ``retention_s`` after
their last write, decision records ``decision_ttl_s`` after theirs; expired entries read as
unknown, and each write drops the expired ones (memory stays bounded by the live entries). No
method awaits in between, so each is atomic on the event loop (swap_applied is a true
compare-and-set). Used by tests and tools that run a proxy in process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from proxy.tracking import timeline
from proxy.tracking.backend import (
    RECENT_WORKFLOWS_KEPT,
    REQUEST_IDS_KEPT,
    WorkflowRaw,
)
from proxy.tracking.memory_state import Expiring, TrackingState
from proxy.tracking.records import Counts, DecisionRecord, Tracked


class MemoryTracking:
    """In-process TrackingBackend."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        retention_s: float,
        decision_ttl_s: float,
    ) -> None:
        self._clock = clock
        self._retention = retention_s
        self._ttl = decision_ttl_s
        self._state = TrackingState()

    async def start(self) -> None:
        """Nothing to start."""

    def counters(self) -> dict[str, int]:
        """None: writes land in memory at once."""
        return {}

    async def write(self, tracked: Tracked) -> None:
        """Add one outcome (see TrackingBackend.write)."""
        _add(self._state.stats.setdefault(tracked.agent, {}), tracked.stats)
        self._write_timeline(tracked)
        if tracked.workflow is not None:
            self._write_workflow(tracked)
        if tracked.decision is not None:
            self._state.decisions.pop(tracked.request_id, None)
            self._state.decisions[tracked.request_id] = (tracked.at + self._ttl, tracked.decision)
        self._purge()

    async def write_many(self, tracked: Sequence[Tracked]) -> None:
        """``write`` each outcome in order."""
        for item in tracked:
            await self.write(item)

    def _write_timeline(self, tracked: Tracked) -> None:
        """Per-minute counters (minutes past TIMELINE_RETENTION_S dropped) and the entry."""
        series = self._state.timeline.setdefault(tracked.agent, {})
        for minute, counts in timeline.split_series(tracked.series).items():
            _add(series.setdefault(minute, {}), counts)
        oldest = timeline.minute_of(self._clock() - timeline.TIMELINE_RETENTION_S)
        while series and next(iter(series)) < oldest:  # minutes arrive in order: oldest first
            del series[next(iter(series))]
        if tracked.recent is not None:
            entries = self._state.recent_decisions.setdefault(tracked.agent, [])
            entries.insert(0, dict(tracked.recent))
            del entries[timeline.RECENT_DECISIONS_KEPT :]

    def _purge(self) -> None:
        """Drop expired entries from the front of the insertion-ordered dicts (amortised O(1):
        entries are re-inserted at the end when written, so the front expires first)."""
        now = self._clock()
        decisions, workflows = self._state.decisions, self._state.workflows
        while decisions and next(iter(decisions.values()))[0] <= now:
            del decisions[next(iter(decisions))]
        while workflows and next(iter(workflows.values())).expires <= now:
            del workflows[next(iter(workflows))]

    def _write_workflow(self, tracked: Tracked) -> None:
        assert tracked.workflow is not None
        entry = self._live_workflow(tracked.workflow)
        if entry is None:
            entry = Expiring(0.0)
        self._state.workflows.pop(tracked.workflow, None)
        self._state.workflows[tracked.workflow] = entry  # to the end: the front expires first
        entry.expires = tracked.at + self._retention
        meta = entry.workflow.meta
        meta.setdefault("first_seen", repr(tracked.at))
        meta["last_seen"] = repr(max(tracked.at, float(meta.get("last_seen", tracked.at))))
        _add(entry.workflow.counts, tracked.workflow_counts)
        ids = entry.workflow.request_ids
        ids.append(tracked.request_id)
        del ids[:-REQUEST_IDS_KEPT]
        for scope in (tracked.agent, None):
            self._touch_recent(scope, tracked.workflow, tracked.at)

    def _touch_recent(self, scope: str | None, workflow: str, at: float) -> None:
        recent = self._state.recent.setdefault(scope, {})
        recent[workflow] = max(at, recent.pop(workflow, at))  # to the end: newest last
        if len(recent) > RECENT_WORKFLOWS_KEPT:
            del recent[next(iter(recent))]

    async def agents(self) -> list[str]:
        """Every agent with stats, sorted."""
        return sorted(self._state.stats)

    async def stats(self, agents: Sequence[str]) -> dict[str, dict[str, float]]:
        """Copies of the raw counters per agent."""
        return {agent: dict(self._state.stats.get(agent, {})) for agent in agents}

    async def timeline(self, agents: Sequence[str], since: float) -> dict[str, timeline.Series]:
        """Copies of the per-minute counters from ``since`` on."""
        first = timeline.minute_of(since)
        series = self._state.timeline
        return {a: {m: dict(c) for m, c in series.get(a, {}).items() if m >= first} for a in agents}

    async def recent_decisions(self, agent: str, limit: int) -> list[dict[str, Any]]:
        """Copies of the agent's newest decisions, newest first."""
        return [dict(entry) for entry in self._state.recent_decisions.get(agent, [])[:limit]]

    async def workflow(self, workflow_id: str) -> WorkflowRaw | None:
        """A copy of the stored workflow, or None."""
        entry = self._live_workflow(workflow_id)
        if entry is None:
            return None
        raw = entry.workflow
        return WorkflowRaw(dict(raw.meta), dict(raw.counts), list(raw.request_ids))

    async def recent_workflows(self, agent: str | None, limit: int) -> list[tuple[str, float]]:
        """Live workflows of ``agent`` (or all), newest first."""
        recent = self._state.recent.get(agent, {})
        live = [(wf, at) for wf, at in recent.items() if self._live_workflow(wf) is not None]
        for gone in set(recent) - {wf for wf, _ in live}:
            del recent[gone]
        return sorted(live, key=lambda item: (-item[1], item[0]))[:limit]

    async def finish(self, workflow_id: str, outcome: str, score: float | None, at: float) -> bool:
        """Mark finished (the retention clock restarts); False if unknown."""
        entry = self._live_workflow(workflow_id)
        if entry is None:
            return False
        entry.expires = at + self._retention
        self._state.workflows[workflow_id] = self._state.workflows.pop(workflow_id)
        meta = entry.workflow.meta
        meta.update(finished_at=repr(at), outcome=outcome)
        if score is not None:
            meta["score"] = repr(score)
        return True

    async def decision(self, request_id: str) -> DecisionRecord | None:
        """The live decision record, or None."""
        found = self._state.decisions.get(request_id)
        if found is None:
            return None
        if found[0] <= self._clock():
            del self._state.decisions[request_id]
            return None
        return found[1]

    async def swap_applied(self, request_id: str, expected: float, new: float, score: float) -> bool | None:
        """Compare-and-set of the applied reward (atomic: no await inside)."""
        record = await self.decision(request_id)
        if record is None:
            return None
        if record.applied != expected:
            return False
        expires = self._state.decisions[request_id][0]
        updated = replace(record, applied=new, score=score)
        self._state.decisions[request_id] = (expires, updated)
        return True

    async def close(self) -> None:
        """Nothing to release."""

    def _live_workflow(self, workflow_id: str) -> Expiring | None:
        entry = self._state.workflows.get(workflow_id)
        if entry is not None and entry.expires <= self._clock():
            del self._state.workflows[workflow_id]
            return None
        return entry


def _add(counts: dict[str, float], increments: Counts) -> None:
    for name, amount in increments.items():
        counts[name] = counts.get(name, 0.0) + amount
