"""``model-manager stats``: what the router has learned, per agent and model.

One row per (agent, model): the posterior the agent's policy samples (``--context``: for
prompts of that context; default every prompt), as alpha, beta, mean, 90% interval, with
``decisions`` = the agent table's evidence mass, and, under ``stats``, the counters of
GET /v1/stats (calls, failures, fallbacks, selection share, latency/TTFT p50/p95, tokens,
cost, mean quality), read from Redis or the embedded database (``stats`` is null only for
an in-process store).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import orjson

from policies.base import ALL_PROMPTS, POOLED, Beta, DecisionRequest, Evidence, Table
from policies.interval import credible_interval
from proxy.config.settings import Config
from proxy.pipeline.router import Router
from proxy.runtime.state import State, open_state
from proxy.tracking.summaries import model_stats, split_counts
from storage.protocols import Dump


def print_stats(config: Config, *, agent: str | None, as_json: bool, context: str = ALL_PROMPTS) -> int:
    """Print posteriors (for prompts of ``context``) and counters from the configured storage;
    exit 0, or 1 if there is nothing."""
    rows = asyncio.run(_rows(config, agent, context))
    if as_json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    else:
        print(format_table(rows))
    return 0 if rows else 1


async def _rows(config: Config, only_agent: str | None, context: str) -> list[dict[str, Any]]:
    state = open_state(config, time.time)
    try:
        dump: Dump = await state.posteriors.dump()
        counts = await _counts(state, only_agent) if state.shared else {}
    finally:
        await state.close()
    snapshot = _snapshot(dump)
    router = Router(config)
    rows: list[dict[str, Any]] = []
    for scope in sorted(set(dump) | set(counts)):
        if only_agent is None or scope == only_agent:
            learnt = set(dump.get(scope, {}).get(ALL_PROMPTS, {}))
            rows.extend(agent_rows(
                router, scope, context=context, snapshot=snapshot, learnt=learnt, counts=counts.get(scope)
            ))
    return rows


def _snapshot(dump: Dump) -> dict[Table, Mapping[str, Evidence]]:
    return {Table(scope, ctx): row for scope, tables in dump.items() for ctx, row in tables.items()}


async def _counts(state: State, only_agent: str | None) -> dict[str, dict[str, float]]:
    """Raw stats counters per agent from the shared tracking backend."""
    agents = [only_agent] if only_agent is not None else await state.tracking.agents()
    found = await state.tracking.stats(agents)
    return {agent: counts for agent, counts in found.items() if counts}


def agent_rows(
    router: Router,
    scope: str,
    *,
    context: str,
    snapshot: Mapping[Table, Mapping[str, Evidence]],
    learnt: set[str],
    counts: Mapping[str, float] | None,
) -> list[dict[str, Any]]:
    """Rows of one scope: every model with evidence or counters, with the posterior the
    scope's policy samples for prompts of ``context``."""
    per_model = {owner[0]: metrics for owner, metrics in split_counts(counts or {}, 2).items()}
    decisions = sum(m.get("decisions", 0.0) for m in per_model.values())
    models = tuple(sorted(learnt | set(per_model)))
    posterior = router.policy_for(scope).posterior(DecisionRequest(scope, context, models), snapshot)
    own = snapshot.get(Table(scope), {})
    rows = []
    for model in models:
        row = posterior_row(scope, model, posterior[model], own.get(model, Evidence()))
        row["stats"] = None if counts is None else model_stats(per_model.get(model, {}), decisions)
        rows.append(row)
    return rows


def posterior_row(scope: str, model: str, posterior: Beta, evidence: Evidence) -> dict[str, Any]:
    """One agent x model: the posterior, its mean and 90% interval, and the agent table's
    evidence mass (``decisions``)."""
    low, high = credible_interval(posterior)
    return {
        "agent": "(all agents)" if scope == POOLED else scope,
        "model": model,
        "alpha": round(posterior.alpha, 3),
        "beta": round(posterior.beta, 3),
        "mean": round(posterior.mean, 4),
        "interval_90": [round(low, 4), round(high, 4)],
        "decisions": round(evidence.total, 2),
    }


HEADER = (
    f"{'agent':<16} {'model':<20} {'alpha':>8} {'beta':>8} {'mean':>6}  {'90% interval':<15} "
    f"{'calls':>6} {'fail':>5} {'fb':>4} {'share':>6} {'p50 s':>6} {'p95 s':>6} "
    f"{'tok in':>8} {'tok out':>8} {'cost $':>9} {'qual':>5}"
)


def format_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no learned state yet"
    lines = [HEADER, "-" * len(HEADER)]
    lines.extend(_line(row) for row in rows)
    return "\n".join(lines)


def _line(row: dict[str, Any]) -> str:
    low, high = row["interval_90"]
    head = (
        f"{row['agent']:<16} {row['model']:<20} {row['alpha']:>8.2f} {row['beta']:>8.2f} "
        f"{row['mean']:>6.3f}  [{low:.3f}, {high:.3f}] "
    )
    stats = row.get("stats")
    if stats is None:
        return head + f"{'-':>6}"
    latency = stats["latency_s"]
    return head + (
        f"{stats['calls']:>6} {stats['failures']:>5} {stats['fallbacks']:>4} "
        f"{stats['selection_share']:>6.1%} {_num(latency['p50']):>6} {_num(latency['p95']):>6} "
        f"{stats['tokens_in']:>8} {stats['tokens_out']:>8} {stats['cost_usd']:>9.4f} "
        f"{_num(stats['quality_mean']):>5}"
    )


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
