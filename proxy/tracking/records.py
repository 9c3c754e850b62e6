"""What one outcome adds to the statistics, the workflow and the decision record.

Pure functions from a scored Outcome (its rewards, cost and heuristic quality) to counter
increments, so both backends (memory, Redis) write exactly the same numbers.

Per (agent, model) stats counters (field ``<model>|<metric>`` of the agent's stats hash):

- ``calls``: attempts sent to the model; ``successes``; ``failures`` (all kinds) and
  ``fail.<kind>`` per FailureKind (``client_error`` included: the request was refused
  by the model, even if no model is penalised for it)
- ``fallbacks``: attempts of the model that were not the request's first attempt
- ``decisions``: requests where the model was the policy's first choice
- ``lat.<i>`` / ``ttft.<i>``: histogram of successful attempts' latency / time to first
  token, bucket ``i`` counting values <= BUCKETS_S[i] (the last bucket is unbounded);
  ``lat_sum`` / ``ttft_sum`` / ``ttft_n`` for means; ``lq.<k>`` / ``tq.<k>``: the same values in
  log-spaced buckets for percentiles within 2% (proxy.tracking.sketch)
- ``tokens_in``, ``tokens_out``, ``cost`` (USD, when known) of the answer;
  ``quality_sum`` / ``quality_n``: heuristic quality of answers (mean = sum / n)
- ``cancelled``: requests given up by the client while this model was being tried

The ``|`` separator cannot occur in agent or model names (proxy.wire.names).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from proxy.forwarding.base import FailureKind
from proxy.pipeline.learning import Scored
from proxy.pipeline.outcome import Attempt, Status
from proxy.tracking import sketch

SEP = "|"
BUCKETS_S: tuple[float, ...] = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Upper edges of the latency/TTFT histogram buckets; one more bucket holds the rest."""

Counts = dict[str, float]
"""Field name -> increment (integers stay integral floats)."""


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """What feedback needs about an answered request (the ``req:<id>`` record)."""

    request_id: str
    agent: str
    context: str
    candidates: tuple[str, ...]
    model: str
    workflow: str | None
    latency_s: float
    ttft_s: float | None
    cost_usd: float | None
    quality: float
    applied: float
    score: float | None = None
    kind: str | None = None
    """How the model was chosen (proxy.pipeline.kinds); None on records written without it."""
    resumed_from: str | None = None
    """The model whose broken stream ``model`` continued (proxy.pipeline.splice)."""


@dataclass(frozen=True, slots=True)
class Tracked:
    """Everything the tracker writes for one outcome."""

    agent: str
    workflow: str | None
    request_id: str
    at: float
    stats: Counts
    workflow_counts: Counts
    decision: DecisionRecord | None
    series: Counts = field(default_factory=dict)
    """Per-minute increments (proxy.tracking.timeline), written in the same batch."""
    recent: Mapping[str, Any] | None = None
    """The agent's recent-decisions entry (proxy.tracking.timeline.recent_entry)."""


def bucket(value: float) -> int:
    """Index of the histogram bucket holding ``value`` seconds."""
    return bisect.bisect_left(BUCKETS_S, value)


def track(scored: Scored, at: float) -> Tracked:
    """The counters and decision record of one scored outcome."""
    outcome = scored.outcome
    return Tracked(
        agent=outcome.agent,
        workflow=outcome.workflow,
        request_id=outcome.request_id,
        at=at,
        stats=stats_counts(scored),
        workflow_counts=workflow_counts(scored) if outcome.workflow else {},
        decision=decision_record(scored),
    )


def stats_counts(scored: Scored) -> Counts:
    """Per-model stats increments of one outcome (see the module docstring)."""
    outcome = scored.outcome
    counts: Counts = {}
    add = _adder(counts)
    add(outcome.decision.choice, "decisions")
    for index, attempt in enumerate(outcome.attempts):
        _attempt_stats(add, attempt, index)
    if outcome.status is Status.CANCELLED:
        tried = outcome.attempts[-1].model if outcome.attempts else outcome.decision.choice
        add(tried, "cancelled")
    answered = outcome.model if outcome.status is Status.SUCCESS else None
    if answered is not None:
        _answer_stats(add, scored, answered)
    return counts


def _attempt_stats(add: _Add, attempt: Attempt, index: int) -> None:
    model = attempt.model
    if attempt.failure is FailureKind.CANCELLED:
        return
    add(model, "calls")
    if index > 0:
        add(model, "fallbacks")
    if attempt.failure is not None:
        add(model, "failures")
        add(model, f"fail.{attempt.failure.value}")
        return
    add(model, "successes")
    add(model, f"lat.{bucket(attempt.latency_s)}")
    add(model, f"{sketch.LATENCY}.{sketch.key(attempt.latency_s)}")
    add(model, "lat_sum", attempt.latency_s)
    if attempt.ttft_s is not None:
        add(model, f"ttft.{bucket(attempt.ttft_s)}")
        add(model, f"{sketch.TTFT}.{sketch.key(attempt.ttft_s)}")
        add(model, "ttft_sum", attempt.ttft_s)
        add(model, "ttft_n")


def _answer_stats(add: _Add, scored: Scored, model: str) -> None:
    summary = scored.outcome.summary
    if summary is not None:
        add(model, "tokens_in", summary.usage.prompt_tokens)
        add(model, "tokens_out", summary.usage.completion_tokens)
    if scored.cost_usd is not None:
        add(model, "cost", scored.cost_usd)
    if scored.quality is not None:
        add(model, "quality_sum", scored.quality)
        add(model, "quality_n")


def workflow_counts(scored: Scored) -> Counts:
    """Workflow increments: ``requests``, ``<status>`` and per ``<agent>|<model>|<metric>``
    (calls, successes, failures, fallbacks, latency_sum, tokens_in, tokens_out, cost)."""
    outcome = scored.outcome
    counts: Counts = {"requests": 1.0, f"status.{outcome.status.value}": 1.0}
    agent = outcome.agent
    add = _adder(counts)
    for index, attempt in enumerate(outcome.attempts):
        if attempt.failure is FailureKind.CANCELLED:
            continue
        key = f"{agent}{SEP}{attempt.model}"
        add(key, "calls")
        add(key, "latency_sum", attempt.latency_s)
        add(key, "fallbacks" if index > 0 else "first_attempts")
        add(key, "failures" if attempt.failure is not None else "successes")
    if outcome.status is Status.SUCCESS and outcome.model is not None:
        key = f"{agent}{SEP}{outcome.model}"
        if outcome.summary is not None:
            add(key, "tokens_in", outcome.summary.usage.prompt_tokens)
            add(key, "tokens_out", outcome.summary.usage.completion_tokens)
        if scored.cost_usd is not None:
            add(key, "cost", scored.cost_usd)
    return counts


def decision_record(scored: Scored) -> DecisionRecord | None:
    """The feedback record of an answered request (None without an answer)."""
    outcome, rewards, quality = scored.outcome, scored.rewards, scored.quality
    model = outcome.model
    if outcome.status is not Status.SUCCESS or model is None or model not in rewards:
        return None
    request = outcome.decision_request
    attempt = outcome.attempts[-1]
    return DecisionRecord(
        request_id=outcome.request_id,
        agent=request.agent,
        context=request.context,
        candidates=request.candidates,
        model=model,
        workflow=outcome.workflow,
        latency_s=attempt.latency_s,
        ttft_s=attempt.ttft_s,
        cost_usd=scored.cost_usd,
        quality=1.0 if quality is None else quality,
        applied=rewards[model],
        kind=outcome.kind.value,
        resumed_from=outcome.resumed_from,
    )


def record_payload(record: DecisionRecord) -> dict[str, Any]:
    """The ``GET /v1/requests/{id}`` body."""
    return {
        "object": "request",
        "id": record.request_id,
        "agent": record.agent,
        "workflow": record.workflow,
        "context": record.context,
        "candidates": list(record.candidates),
        "model": record.model,
        "decision": record.kind,
        "latency_s": record.latency_s,
        "ttft_s": record.ttft_s,
        "cost_usd": record.cost_usd,
        "quality": record.quality,
        "reward": record.applied,
        "score": record.score,
        "resumed_from": record.resumed_from,
    }


class _Add:
    """``add(owner, metric, amount=1)`` into a Counts dict (a callable protocol for typing)."""

    def __init__(self, counts: Counts) -> None:
        self._counts = counts

    def __call__(self, owner: str, metric: str, amount: float = 1.0) -> None:
        name = f"{owner}{SEP}{metric}"
        self._counts[name] = self._counts.get(name, 0.0) + float(amount)


def _adder(counts: Counts) -> _Add:
    return _Add(counts)
