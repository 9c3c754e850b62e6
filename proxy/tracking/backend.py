"""The tracking backend seam (memory or Redis) and the decision record's wire form."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from proxy.tracking.records import DecisionRecord, Tracked
from storage.errors import StoreUnavailable
from storage.redis import codec as redis_codec

UNAVAILABLE: tuple[type[BaseException], ...] = (*redis_codec.UNAVAILABLE, StoreUnavailable)
"""What reads, ``finish`` and ``swap_applied`` (and the posterior store) raise when the
storage does not answer: Redis connection errors and timeouts. Anything else is a bug."""

REQUEST_IDS_KEPT = 1000
"""Request ids kept per workflow (the newest); workflow feedback reaches these."""
RECENT_WORKFLOWS_KEPT = 1000
"""Workflows kept in each recent-workflows index (per agent and overall)."""
META_FIELDS = ("first_seen", "last_seen", "finished_at", "outcome", "score")
"""Workflow hash fields that are not counters."""


@dataclass(slots=True)
class WorkflowRaw:
    """A workflow as stored: metadata strings, counters, request ids (oldest first)."""

    meta: dict[str, str] = field(default_factory=dict)
    counts: dict[str, float] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)


class TrackingBackend(Protocol):
    """Where stats, workflows and decision records live. Writes are one round trip."""

    async def write(self, tracked: Tracked) -> None:
        """Add one outcome's counters, workflow entry and decision record."""
        ...

    async def write_many(self, tracked: Sequence[Tracked]) -> None:
        """``write`` for several outcomes, in order, in one round trip."""
        ...

    async def agents(self) -> list[str]:
        """Every agent with stats, sorted."""
        ...

    async def stats(self, agents: Sequence[str]) -> dict[str, dict[str, float]]:
        """Raw stats counters per agent (missing agents map to {})."""
        ...

    async def timeline(self, agents: Sequence[str], since: float) -> dict[str, dict[int, dict[str, float]]]:
        """Per-minute counters per agent (minute -> ``<model>|<metric>`` -> amount) of the
        minutes from ``since`` (epoch seconds) on; one round trip."""
        ...

    async def recent_decisions(self, agent: str, limit: int) -> list[dict[str, Any]]:
        """The agent's newest decisions (timeline.recent_entry dicts), newest first."""
        ...

    async def workflow(self, workflow_id: str) -> WorkflowRaw | None:
        """The stored workflow, or None if unknown or expired."""
        ...

    async def recent_workflows(self, agent: str | None, limit: int) -> list[tuple[str, float]]:
        """(workflow id, last seen) newest first, for ``agent`` or every agent."""
        ...

    async def finish(self, workflow_id: str, outcome: str, score: float | None, at: float) -> bool:
        """Mark a workflow finished; False if it is unknown or expired."""
        ...

    async def decision(self, request_id: str) -> DecisionRecord | None:
        """The decision record, or None if unknown or expired."""
        ...

    async def swap_applied(self, request_id: str, expected: float, new: float, score: float) -> bool | None:
        """Set applied=new and score if applied is still ``expected`` (atomic compare-and-set).

        True: swapped; False: applied changed meanwhile; None: the record is gone.
        """
        ...

    async def start(self) -> None:
        """Start background work (embedded: periodic saving; Redis: write retries)."""
        ...

    async def close(self) -> None:
        """Release resources (the Redis client is the store's and stays open)."""
        ...

    def counters(self) -> Mapping[str, int]:
        """Write-path counters: ``pending`` and ``dropped_updates`` where writes are buffered."""
        ...


def record_fields(record: DecisionRecord) -> dict[str, str]:
    """The decision record as hash fields (floats as repr, exact round trip)."""
    fields = {
        "agent": record.agent,
        "context": record.context,
        "candidates": orjson.dumps(list(record.candidates)).decode(),
        "model": record.model,
        "workflow": record.workflow or "",
        "latency_s": repr(record.latency_s),
        "ttft_s": "" if record.ttft_s is None else repr(record.ttft_s),
        "cost_usd": "" if record.cost_usd is None else repr(record.cost_usd),
        "quality": repr(record.quality),
        "applied": repr(record.applied),
    }
    if record.score is not None:
        fields["score"] = repr(record.score)
    if record.kind is not None:
        fields["kind"] = record.kind
    if record.resumed_from is not None:
        fields["resumed_from"] = record.resumed_from
    return fields


def parse_record(request_id: str, fields: Mapping[str, str]) -> DecisionRecord | None:
    """The record from stored fields; None when missing or corrupt."""
    try:
        candidates = orjson.loads(fields["candidates"])
        record = DecisionRecord(
            request_id=request_id,
            agent=fields["agent"],
            context=fields["context"],
            candidates=tuple(str(c) for c in candidates),
            model=fields["model"],
            workflow=fields.get("workflow") or None,
            latency_s=_finite(fields["latency_s"]),
            ttft_s=_optional(fields.get("ttft_s", "")),
            cost_usd=_optional(fields.get("cost_usd", "")),
            quality=_finite(fields["quality"]),
            applied=_finite(fields["applied"]),
            score=_optional(fields.get("score", "")),
            kind=fields.get("kind") or None,
            resumed_from=fields.get("resumed_from") or None,
        )
    except (KeyError, ValueError, TypeError, orjson.JSONDecodeError):
        return None
    return record


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _optional(text: str) -> float | None:
    return None if text == "" else _finite(text)
