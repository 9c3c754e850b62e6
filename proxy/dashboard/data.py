"""What each dashboard page shows, assembled from the tracker's and the store's read APIs.

Numbers come from the same reads as ``GET /v1/stats`` and ``GET /v1/workflows`` (so the
pages agree with them); time series from the per-minute buckets (proxy.tracking.timeline).
Cooldowns and rpm/tpm windows are this process's view (rpm/tpm are shared with Redis).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from policies.base import ALL_PROMPTS, Beta, Evidence, Table
from proxy.dashboard import posterior, series
from proxy.pipeline.services import Services
from proxy.tracking import summaries
from proxy.tracking.backend import UNAVAILABLE
from proxy.tracking.timeline import Series, minute_of
from proxy.tracking.tracker import Tracker

RECENT_SHOWN = 30
WORKFLOWS_SHOWN = 50


@dataclass(frozen=True, slots=True)
class Window:
    """The charted minutes: ``hours`` back from ``now``."""

    now: float
    hours: float

    @property
    def since(self) -> float:
        return self.now - self.hours * 3600

    def axis(self, data: Series) -> list[int]:
        return series.minutes(data, minute_of(self.since), minute_of(self.now))


async def overview(services: Services, tracker: Tracker, window: Window) -> dict[str, Any]:
    """Totals, per-agent rows, model states and the traffic charts."""
    counts, means = await tracker.metrics_input()
    rows = [_counted(agent, counts[agent], means.get(agent, {})) for agent in sorted(counts)]
    merged = series.merged((await tracker.timeline(sorted(counts), window.since)).values())
    axis = window.axis(merged)
    return {
        "totals": totals(rows),
        "agents": [agent_row(row) for row in rows],
        "models": model_states(services),
        "failure_kinds_window": series.failure_kinds(merged),
        "charts": [
            series.chart("requests", "Requests, answers, fallbacks and failures per minute", axis, {
                name: series.metric(merged, axis, metric)
                for name, metric in (("requests", "decisions"), ("answered", "successes"),
                                     ("fallbacks", "fallbacks"), ("failures", "failures"))
            }),
            series.chart("shares", "Share of first choices per model", axis, series.shares(merged, axis)),
            series.chart("cost", "Cost per minute (USD)", axis, series.per_model(merged, axis, "cost")),
            series.chart("tokens", "Tokens per minute", axis, {
                "prompt": series.metric(merged, axis, "tokens_in"),
                "completion": series.metric(merged, axis, "tokens_out"),
            }),
        ],
    }


def _counted(agent: str, counts: dict[str, float], means: dict[str, float]) -> dict[str, Any]:
    """An agent's ``/v1/stats`` rows from the same counters (summaries.model_stats), with the
    posterior mean only (no credible interval: the overview stays cheap at many agents)."""
    per_model = {owner[0]: metrics for owner, metrics in summaries.split_counts(counts, 2).items()}
    decisions = sum(m.get("decisions", 0.0) for m in per_model.values())
    models = [
        {"model": model, **summaries.model_stats(metrics, decisions), "posterior": {"mean": means.get(model)}}
        for model, metrics in sorted(per_model.items())
    ]
    return {"agent": agent, "requests": int(decisions), "models": models}


def totals(agents: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums over every agent and model of ``/v1/stats``' rows."""
    rows = [model for agent in agents for model in agent["models"]]
    kinds: dict[str, int] = {}
    for row in rows:
        for kind, count in row["failures_by_kind"].items():
            kinds[kind] = kinds.get(kind, 0) + count
    calls = sum(r["calls"] for r in rows)
    successes = sum(r["successes"] for r in rows)
    return {
        "requests": sum(a["requests"] for a in agents),
        "calls": calls,
        "successes": successes,
        "success_rate": successes / calls if calls else None,
        "fallbacks": sum(r["fallbacks"] for r in rows),
        "failures": sum(r["failures"] for r in rows),
        "failures_by_kind": dict(sorted(kinds.items())),
        "cost_usd": sum(r["cost_usd"] for r in rows),
        "tokens_in": sum(r["tokens_in"] for r in rows),
        "tokens_out": sum(r["tokens_out"] for r in rows),
    }


def agent_row(agent: dict[str, Any]) -> dict[str, Any]:
    """One overview line: the agent's totals and its most chosen model."""
    models = agent["models"]
    top = max(models, key=lambda r: r["decisions"], default=None)
    summed = totals([agent])
    return {
        "agent": agent["agent"],
        **summed,
        "top_model": None if top is None or not top["decisions"] else top["model"],
        "top_share": None if top is None else top["selection_share"],
        "best_posterior": max(
            (r for r in models if r["posterior"]["mean"] is not None),
            key=lambda r: r["posterior"]["mean"],
            default={"model": None},
        )["model"],
    }


def model_states(services: Services) -> list[dict[str, Any]]:
    """Every configured model: available, resting after a 429, at its rpm/tpm limit, or unavailable."""
    config = services.config
    rows = []
    for name, arm in config.arms.items():
        state = "ok"
        if services.cooldowns.resting(name):
            state = "resting"
        elif services.limits.full(arm):
            state = "at limit"
        rows.append({"model": name, "state": state, "rpm": arm.rpm, "tpm": arm.tpm, "reason": ""})
    for name, reason in config.unavailable.items():
        rows.append({"model": name, "state": "unavailable", "rpm": None, "tpm": None, "reason": reason})
    return rows


async def agent_page(services: Services, tracker: Tracker, agent: str, window: Window) -> dict[str, Any]:
    """An agent's model rows, posteriors per context, share over time and recent decisions."""
    stats = (await tracker.stats(agent))["agents"][0]
    data = (await tracker.timeline([agent], window.since))[agent]
    recent = await tracker.recent_decisions(agent, RECENT_SHOWN)
    records = await tracker.decisions([entry["id"] for entry in recent])
    for entry in recent:
        record = records.get(entry["id"])
        entry["feedback"] = None if record is None else record.score
        entry["applied"] = None if record is None else record.applied
    contexts = sorted(set(series.context_choices(data)) | {e["context"] for e in recent})
    models = sorted({row["model"] for row in stats["models"]} | set(services.config.arms))
    axis = window.axis(data)
    tables = await posteriors(services, agent, contexts, models)
    return {
        "agent": agent,
        "stats": stats,
        "posteriors": tables,
        "context_choices": series.context_choices(data),
        "recent": recent,
        "charts": [
            density_chart(tables.get(ALL_PROMPTS)),
            series.chart("agent-shares", "Share of first choices per model", axis, series.shares(data, axis)),
            series.chart("agent-cost", "Cost per minute (USD)", axis, series.per_model(data, axis, "cost")),
        ],
    }


async def posteriors(
    services: Services, agent: str, contexts: list[str], models: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Context ("" = all prompts) -> interval rows of the models with evidence (or the prior
    for the all-prompts table); {} while the store is down."""
    tables = [Table(agent, ALL_PROMPTS), *(Table(agent, c) for c in contexts if c != ALL_PROMPTS)]
    try:
        snapshot = await services.store.load(tables, models)
    except UNAVAILABLE:
        return {}
    priors = services.config.router.priors
    out = {}
    for table in tables:
        cells = snapshot.get(table, {})
        betas = {
            m: posterior.posterior(priors.get(m, (1.0, 1.0)), cells.get(m, Evidence()))
            for m in models
            if table.context == ALL_PROMPTS or cells.get(m, Evidence()).total > 0
        }
        if betas:
            out[table.context] = posterior.intervals(betas)
    return out


def density_chart(rows: list[dict[str, Any]] | None) -> series.Chart:
    """The all-prompts posteriors' density curves (x: reward rate)."""
    betas = {str(r["model"]): Beta(r["alpha"], r["beta"]) for r in rows or []}
    grid, columns = posterior.curves(betas)
    return {
        "id": "agent-density",
        "title": "Posterior density of each model's reward (all prompts)",
        "time": False,
        "x": grid,
        "series": [{"label": m, "values": v} for m, v in columns.items()],
    }


async def workflows_page(tracker: Tracker, agent: str | None, status: str | None) -> dict[str, Any]:
    """Recent workflows (of ``agent``) with their summaries, filtered by ``status``
    (``open``, ``finished`` or an outcome name)."""
    listed = (await tracker.workflows(agent, WORKFLOWS_SHOWN))["data"]
    found = await asyncio.gather(*(tracker.workflow(row["id"]) for row in listed))
    rows = [summary for summary in found if summary is not None and _matches(summary, status)]
    return {"agent": agent, "status": status, "workflows": rows}


def _matches(summary: dict[str, Any], status: str | None) -> bool:
    if status is None or status == "":
        return True
    if status == "open":
        return not summary["finished"]
    if status == "finished":
        return bool(summary["finished"])
    return bool(summary["outcome"] == status)


async def workflow_page(tracker: Tracker, workflow_id: str) -> dict[str, Any] | None:
    """One workflow's summary and its calls in time order (None if unknown)."""
    summary = await tracker.workflow(workflow_id)
    if summary is None:
        return None
    records = await tracker.decisions(summary["request_ids"])
    entries = {}
    for agent in summary["agents"]:
        for entry in await tracker.recent_decisions(agent, RECENT_SHOWN * 2):
            entries[entry["id"]] = entry
    calls = [_call(rid, records.get(rid), entries.get(rid)) for rid in summary["request_ids"]]
    return {"workflow": summary, "calls": calls}


def _call(request_id: str, record: Any, entry: dict[str, Any] | None) -> dict[str, Any]:
    """A request of the workflow: what its decision record and recent entry say."""
    call: dict[str, Any] = {"id": request_id, "at": None, "agent": None, "model": None, "status": None,
                            "attempts": [], "latency_s": None, "cost_usd": None, "quality": None,
                            "reward": None, "feedback": None}
    if entry is not None:
        call.update({name: entry.get(name) for name in ("at", "agent", "model", "status", "latency_s")})
        call["attempts"] = entry.get("attempts", [])
    if record is not None:
        call.update(agent=record.agent, model=record.model, status="success", latency_s=record.latency_s,
                    cost_usd=record.cost_usd, quality=record.quality, reward=record.applied,
                    feedback=record.score)
    return call
