"""``model-manager stats``: what the router has learned, per agent and model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import orjson

from policies.base import ALL_PROMPTS, POOLED, Beta, Evidence
from policies.interval import credible_interval
from proxy.config import Config
from proxy.store_factory import build_store


def print_stats(config: Config, *, agent: str | None, as_json: bool) -> int:
    """Print posteriors from the configured store; exit code 0, or 1 if there is nothing."""
    rows = asyncio.run(_rows(config, agent))
    if as_json:
        print(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    else:
        print(format_table(rows))
    return 0 if rows else 1


async def _rows(config: Config, only_agent: str | None) -> list[dict[str, Any]]:
    store = build_store(config, time.time)
    try:
        dump: Mapping[str, Mapping[str, Mapping[str, Evidence]]] = await store.dump()
    finally:
        await store.close()
    rows = []
    for scope, contexts in sorted(dump.items()):
        if only_agent is not None and scope != only_agent:
            continue
        for model, evidence in sorted(contexts.get(ALL_PROMPTS, {}).items()):
            rows.append(posterior_row(config, scope, model, evidence))
    return rows


def posterior_row(config: Config, scope: str, model: str, evidence: Evidence) -> dict[str, Any]:
    """One agent x model: prior + evidence, mean and 90% interval."""
    alpha, beta = config.router.priors.get(model, (1.0, 1.0))
    posterior = Beta(alpha, beta).plus(evidence)
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


def format_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no learned state yet"
    header = (
        f"{'agent':<20} {'model':<24} {'alpha':>9} {'beta':>9} {'mean':>6}  {'90% interval':<15} {'n':>8}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        low, high = row["interval_90"]
        lines.append(
            f"{row['agent']:<20} {row['model']:<24} {row['alpha']:>9.2f} {row['beta']:>9.2f} "
            f"{row['mean']:>6.3f}  [{low:.3f}, {high:.3f}]  {row['decisions']:>8.1f}"
        )
    return "\n".join(lines)
