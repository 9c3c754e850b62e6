"""Per-minute counters and recent decisions of one outcome (what the dashboard charts).

Pure functions, so both backends store the same numbers. Series fields are
``<minute>|<model>|<metric>`` (``minute`` = epoch seconds // 60) with the metrics of
SERIES_METRICS, ``fail.<kind>`` and ``ctx.<context>`` (first choices in that prompt
context). A recent-decision entry is a small JSON-able dict (see ``recent_entry``).

Both backends keep the series TIMELINE_RETENTION_S and the RECENT_DECISIONS_KEPT newest
decisions per agent, and write them in the same batch as the stats counters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from proxy.pipeline.learning import Scored
from proxy.pipeline.outcome import Outcome
from proxy.tracking.records import SEP, Counts, Tracked

MINUTE_S = 60
TIMELINE_RETENTION_S = 6 * 3600
"""How long per-minute buckets live."""
RECENT_DECISIONS_KEPT = 50
"""Recent decisions kept per agent (the newest)."""
SERIES_METRICS = frozenset({
    "decisions", "calls", "successes", "failures", "fallbacks", "cancelled",
    "tokens_in", "tokens_out", "cost",
})

Series = dict[int, dict[str, float]]
"""Minute -> ``<model>|<metric>`` -> amount."""


def minute_of(at: float) -> int:
    """The epoch minute holding time ``at``."""
    return int(at // MINUTE_S)


def series_counts(outcome: Outcome, stats: Counts) -> Counts:
    """The per-minute increments of ``outcome`` (its ``stats`` counters filtered, plus the
    first choice's context), fields ``<minute>|<model>|<metric>``."""
    minute = minute_of(outcome.started_at)
    counts = {f"{minute}{SEP}{name}": amount for name, amount in stats.items() if _charted(name)}
    context = outcome.decision_request.context
    counts[f"{minute}{SEP}{outcome.decision.choice}{SEP}ctx.{context}"] = 1.0
    return counts


def _charted(name: str) -> bool:
    metric = name.rpartition(SEP)[2]
    return metric in SERIES_METRICS or metric.startswith("fail.")


def recent_entry(scored: Scored) -> dict[str, Any]:
    """What the agent page lists about one request."""
    outcome = scored.outcome
    answered = outcome.model
    return {
        "id": outcome.request_id,
        "agent": outcome.agent,
        "at": outcome.started_at,
        "context": outcome.decision_request.context,
        "candidates": list(outcome.decision_request.candidates),
        "choice": outcome.decision.choice,
        "explored": outcome.decision.explored,
        "kind": outcome.kind.value,
        "propensity": scored.propensity,
        "attempts": [[a.model, "" if a.failure is None else a.failure.value] for a in outcome.attempts],
        "status": outcome.status.value,
        "model": answered,
        "workflow": outcome.workflow,
        "latency_s": outcome.latency_s,
        "reward": None if answered is None else scored.rewards.get(answered),
    }


def split_series(fields: Mapping[str, float]) -> Series:
    """``<minute>|<model>|<metric>`` fields grouped by minute (malformed ones skipped)."""
    out: Series = {}
    for name, value in fields.items():
        minute, sep, rest = name.partition(SEP)
        if sep and minute.isdigit():
            bucket = out.setdefault(int(minute), {})
            bucket[rest] = bucket.get(rest, 0.0) + value
    return out


def stamped(tracked: Tracked, scored: Scored) -> Tracked:
    """``tracked`` with its per-minute increments and recent-decision entry."""
    series = series_counts(scored.outcome, tracked.stats)
    return replace(tracked, series=series, recent=recent_entry(scored))
