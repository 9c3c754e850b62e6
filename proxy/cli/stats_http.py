"""``model-manager stats`` from a running proxy: ``GET /v1/stats`` as stats rows.

A proxy that is not up (refused, timed out, not answering like model-manager) yields None,
and ``stats`` reads the configured storage instead; a proxy that refuses the key says so on
stderr.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx

from policies.base import ALL_PROMPTS, POOLED

TIMEOUT_S = 2.0
"""Connect and read timeout: a proxy that is up answers /v1/stats in milliseconds."""
PER_ROW = ("model", "posterior", "evidence")


def fetch_stats(
    url: str, *, master_key: str | None, agent: str | None, context: str, timeout_s: float = TIMEOUT_S
) -> dict[str, Any] | None:
    """The ``GET /v1/stats`` body of the proxy at ``url``, or None when none answers it."""
    params = {"agent": agent} if agent is not None else {}
    if context != ALL_PROMPTS:
        params["context"] = context
    headers = {"Authorization": f"Bearer {master_key}"} if master_key else {}
    try:
        reply = httpx.get(f"{url.rstrip('/')}/v1/stats", params=params, headers=headers, timeout=timeout_s)
    except httpx.HTTPError:
        return None
    if reply.status_code in (401, 403):
        message = f"stats: the proxy at {url} refused the master key; reading the configured storage"
        print(message, file=sys.stderr)
        return None
    try:
        body = reply.json()
    except ValueError:
        return None
    ok = reply.status_code == 200 and isinstance(body, dict) and body.get("object") == "stats"
    return body if ok else None


def rows_from_stats(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The stats rows (as ``proxy.cli.stats`` prints them) of a ``/v1/stats`` body."""
    return [_row(agent["agent"], row) for agent in body["agents"] for row in agent["models"]]


def posterior_columns(scope: str, model: str, posterior: dict[str, Any], evidence: float) -> dict[str, Any]:
    """A stats row's leading columns from a ``/v1/stats`` posterior payload: both sources of
    ``stats`` round the same payload the same way, so they print the same digits."""
    low, high = posterior["interval_90"]
    return {
        "agent": "(all agents)" if scope == POOLED else scope,
        "model": model,
        "alpha": round(posterior["alpha"], 3),
        "beta": round(posterior["beta"], 3),
        "mean": round(posterior["mean"], 4),
        "interval_90": [round(low, 4), round(high, 4)],
        "decisions": round(evidence, 2),
    }


def _row(agent: str, row: dict[str, Any]) -> dict[str, Any]:
    columns = posterior_columns(agent, row["model"], row["posterior"], row.get("evidence", 0.0))
    columns["stats"] = {key: value for key, value in row.items() if key not in PER_ROW}
    return columns
