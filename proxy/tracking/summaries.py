"""Raw counters -> the JSON shapes of ``GET /v1/stats`` and ``GET /v1/workflows/{id}``.

Percentiles come from the log-spaced sketch counters (proxy.tracking.sketch: within 2% of
the value at that rank); counters written before the sketch existed fall back to the
coarse histogram's bucket edge (proxy.tracking.records.BUCKETS_S).

``selection_share`` is the model's share of the agent's first choices so far (the
``decisions`` counters: how often the policy picked the model first), not a fresh
propensity estimate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.base import Beta, Evidence
from policies.interval import credible_interval
from proxy.tracking import sketch
from proxy.tracking.backend import WorkflowRaw
from proxy.tracking.records import BUCKETS_S, SEP

Counts = Mapping[str, float]
WORKFLOW_METRICS = (
    "calls", "successes", "failures", "fallbacks", "tokens_in", "tokens_out", "cost", "latency_sum",
)


def split_counts(counts: Counts, parts: int) -> dict[tuple[str, ...], dict[str, float]]:
    """``a|b|metric`` fields grouped by their owner tuple (``parts`` - 1 names)."""
    grouped: dict[tuple[str, ...], dict[str, float]] = {}
    for name, value in counts.items():
        pieces = name.split(SEP)
        if len(pieces) == parts:
            grouped.setdefault(tuple(pieces[:-1]), {})[pieces[-1]] = value
    return grouped


def models_in(counts: Counts) -> set[str]:
    """The models named by an agent's ``model|metric`` stats fields."""
    return {name.split(SEP, 1)[0] for name in counts}


def percentile(metrics: Mapping[str, float], prefix: str, p: float) -> float | None:
    """Upper bucket edge at rank ``p`` of the ``<prefix>.<i>`` histogram (None: no data/overflow)."""
    counts = [metrics.get(f"{prefix}.{i}", 0.0) for i in range(len(BUCKETS_S) + 1)]
    total = sum(counts)
    if total <= 0:
        return None
    running = 0.0
    for i, count in enumerate(counts):
        running += count
        if running >= p * total:
            return BUCKETS_S[i] if i < len(BUCKETS_S) else None
    return None


def posterior_payload(posterior: Beta) -> dict[str, Any]:
    """A posterior as alpha, beta, mean and the 90% equal-tailed interval."""
    low, high = credible_interval(posterior)
    return {
        "alpha": round(posterior.alpha, 6),
        "beta": round(posterior.beta, 6),
        "mean": round(posterior.mean, 6),
        "interval_90": [round(low, 6), round(high, 6)],
    }


def model_stats(metrics: Mapping[str, float], decisions_total: float) -> dict[str, Any]:
    """One (agent, model) row of counters, distributions and means."""
    get = metrics.get
    successes = get("successes", 0.0)
    quality_n = get("quality_n", 0.0)
    ttft_n = get("ttft_n", 0.0)
    return {
        "calls": int(get("calls", 0.0)),
        "successes": int(successes),
        "failures": int(get("failures", 0.0)),
        "failures_by_kind": {k[5:]: int(v) for k, v in sorted(metrics.items()) if k.startswith("fail.")},
        "fallbacks": int(get("fallbacks", 0.0)),
        "cancelled": int(get("cancelled", 0.0)),
        "decisions": int(get("decisions", 0.0)),
        "selection_share": round(get("decisions", 0.0) / decisions_total, 6) if decisions_total else 0.0,
        "latency_s": _distribution(metrics, "lat", get("lat_sum", 0.0), successes),
        "ttft_s": _distribution(metrics, "ttft", get("ttft_sum", 0.0), ttft_n),
        "tokens_in": int(get("tokens_in", 0.0)),
        "tokens_out": int(get("tokens_out", 0.0)),
        "cost_usd": round(get("cost", 0.0), 9),
        "quality_mean": round(get("quality_sum", 0.0) / quality_n, 6) if quality_n else None,
    }


SKETCH_OF = {"lat": sketch.LATENCY, "ttft": sketch.TTFT}


def _distribution(metrics: Mapping[str, float], prefix: str, total: float, n: float) -> dict[str, Any]:
    return {
        "mean": round(total / n, 6) if n else None,
        "p50": _quantile(metrics, prefix, 0.5),
        "p95": _quantile(metrics, prefix, 0.95),
    }


def _quantile(metrics: Mapping[str, float], prefix: str, p: float) -> float | None:
    found = sketch.quantile(metrics, SKETCH_OF[prefix], p)
    return found if found is not None else percentile(metrics, prefix, p)


def agent_stats(
    agent: str,
    counts: Counts,
    evidence: Mapping[str, Evidence],
    posteriors: Mapping[str, Beta],
) -> dict[str, Any]:
    """An agent's rows: every model with stats or evidence, sorted by name, each with the
    posterior the agent's policy samples (``posteriors``; flat Beta(1, 1) when missing) and
    the agent table's evidence mass (``evidence``)."""
    per_model = {owner[0]: metrics for owner, metrics in split_counts(counts, 2).items()}
    decisions = sum(m.get("decisions", 0.0) for m in per_model.values())
    models = sorted(set(per_model) | {m for m, e in evidence.items() if e.total > 0})
    rows = []
    for model in models:
        row: dict[str, Any] = {"model": model, **model_stats(per_model.get(model, {}), decisions)}
        row["posterior"] = posterior_payload(posteriors.get(model, Beta()))
        row["evidence"] = round(evidence.get(model, Evidence()).total, 6)
        rows.append(row)
    return {"agent": agent, "requests": int(decisions), "models": rows}


def workflow_summary(workflow_id: str, raw: WorkflowRaw) -> dict[str, Any]:
    """The ``GET /v1/workflows/{id}`` body."""
    usage = [_usage_row(owner, metrics) for owner, metrics in sorted(split_counts(raw.counts, 3).items())]
    totals = dict.fromkeys(WORKFLOW_METRICS, 0.0)
    for row in usage:
        for name in WORKFLOW_METRICS:
            totals[name] += row["_raw"][name]
        del row["_raw"]
    meta = raw.meta
    return {
        "object": "workflow",
        "id": workflow_id,
        "first_seen": _float(meta.get("first_seen")),
        "last_seen": _float(meta.get("last_seen")),
        "finished": "finished_at" in meta,
        "finished_at": _float(meta.get("finished_at")),
        "outcome": meta.get("outcome"),
        "score": _float(meta.get("score")),
        "requests": int(raw.counts.get("requests", 0.0)),
        "statuses": {k[7:]: int(v) for k, v in sorted(raw.counts.items()) if k.startswith("status.")},
        "totals": _totals(totals),
        "agents": sorted({row["agent"] for row in usage}),
        "usage": usage,
        "request_ids": raw.request_ids,
    }


def _usage_row(owner: tuple[str, ...], metrics: Mapping[str, float]) -> dict[str, Any]:
    raw = {name: metrics.get(name, 0.0) for name in WORKFLOW_METRICS}
    calls = raw["calls"]
    return {
        "agent": owner[0],
        "model": owner[1],
        **{name: int(raw[name]) for name in WORKFLOW_METRICS[:6]},
        "cost_usd": round(raw["cost"], 9),
        "latency_s_mean": round(raw["latency_sum"] / calls, 6) if calls else None,
        "_raw": raw,
    }


def _totals(totals: Mapping[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {name: int(totals[name]) for name in WORKFLOW_METRICS[:6]}
    out["cost_usd"] = round(totals["cost"], 9)
    out["latency_s_sum"] = round(totals["latency_sum"], 6)
    return out


def _float(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None
