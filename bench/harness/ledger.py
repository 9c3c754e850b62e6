"""What the proxy should have written for a set of answers, and what Redis and its endpoints show.

Expected figures come from the client's view only (the ``x-model-manager-attempts`` header
of every answer), observed ones from Redis and the tracking endpoints after the proxy settled:

- posterior: every attempt adds evidence mass 1 (r successes + 1 - r failures) to each table
  the policy reads; with ``use_context: false`` and pooling that is TABLES_PER_ATTEMPT tables
  (the agent's and the pooled one). Seen: the growth of the sum of every ``:s`` and ``:f``
  field of every posterior hash during the scenario (half-life off: nothing decays).
- stats: ``GET /v1/stats?agent=`` calls summed over models, against attempts per agent.
- workflow: ``GET /v1/workflows/{id}`` ``requests``, against answers in that workflow.
- decisions: decision-record keys that exist, against request ids of successful answers.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import httpx
import redis

from bench.harness.fixed_rate import Result
from storage.redis.keys import encode_scope, post_pattern

TABLES_PER_ATTEMPT = 2
KINDS = ("posterior", "stats", "workflow", "decisions")
HTML_MARKS = ("<html", "<!doctype", "<body", "<head")


def posterior_mass(client: redis.Redis, prefix: str = "mm") -> float:
    """Sum of every evidence field (``<model>:s``, ``<model>:f``) of every posterior hash."""
    total = 0.0
    for key in client.scan_iter(match=post_pattern(prefix), count=1000):
        for name, value in client.hgetall(key).items():
            if name.endswith((b":s", b":f")):
                total += float(value)
    return total


def has_html(text: str) -> bool:
    lowered = text.lower()
    return any(mark in lowered for mark in HTML_MARKS)


@dataclass
class Ledger:
    """Expected vs seen per kind; ``lost`` is expected minus seen (negative: counted twice)."""

    expected: dict[str, float]
    seen: dict[str, float]

    def lost(self, kind: str) -> float:
        return round(self.expected[kind] - self.seen[kind], 6)


def _answered(results: Iterable[Result]) -> list[Result]:
    return [r for r in results if r.attempts is not None]


def expected_figures(results: Sequence[Result]) -> dict[str, float]:
    answered = _answered(results)
    attempts = sum(r.attempts or 0 for r in answered)
    return {
        "posterior": float(attempts * TABLES_PER_ATTEMPT),
        "stats": float(attempts),
        "workflow": float(sum(1 for r in answered if r.sender.workflow is not None)),
        "decisions": float(sum(1 for r in answered if not r.failed and r.request_id)),
    }


def seen_figures(
    proxy_url: str, client: redis.Redis, results: Sequence[Result], mass_before: float, prefix: str = "mm"
) -> dict[str, float]:
    agents = sorted({r.sender.agent for r in results})
    workflows = sorted({r.sender.workflow for r in results if r.sender.workflow is not None})
    ids = [r.request_id for r in _answered(results) if not r.failed and r.request_id]
    with httpx.Client(base_url=proxy_url, timeout=30) as http:
        stats = sum(_agent_calls(http, agent) for agent in agents)
        flows = sum(_workflow_requests(http, wf) for wf in workflows)
    return {
        "posterior": posterior_mass(client, prefix) - mass_before,
        "stats": float(stats),
        "workflow": float(flows),
        "decisions": float(_existing(client, [f"{prefix}:req:{encode_scope(i)}" for i in ids])),
    }


def _agent_calls(http: httpx.Client, agent: str) -> int:
    rows = http.get("/v1/stats", params={"agent": agent}).json().get("agents", [])
    return sum(int(model["calls"]) for row in rows if row["agent"] == agent for model in row["models"])


def _workflow_requests(http: httpx.Client, workflow: str) -> int:
    response = http.get(f"/v1/workflows/{workflow}")
    return int(response.json()["requests"]) if response.status_code == 200 else 0


def _existing(client: redis.Redis, keys: list[str], chunk: int = 500) -> int:
    found = 0
    for start in range(0, len(keys), chunk):
        found += int(client.exists(*keys[start : start + chunk])) if keys[start : start + chunk] else 0
    return found


def write_counters(proxy_url: str) -> dict[str, dict[str, int]]:
    """``/ready``'s ``writes`` (store, tracking, learner counters)."""
    payload = httpx.get(f"{proxy_url}/ready", timeout=10).json()
    writes: dict[str, dict[str, int]] = payload["writes"]
    return writes


def settled(writes: dict[str, dict[str, int]]) -> bool:
    """Nothing buffered and every submitted outcome learned."""
    learner = writes["learner"]
    pending = writes["store"].get("pending", 0) + writes["tracking"].get("pending", 0)
    return pending == 0 and learner.get("submitted") == learner.get("recorded")


def wait_settled(proxy_url: str, timeout: float = 60.0, *, workers: int = 1) -> bool:
    """Poll ``/ready`` until settled ``2 + 3 * (workers - 1)`` times in a row (False on
    timeout). Each poll is a new connection, which any of ``workers`` processes may take, so
    with several the streak is long enough that every process answers in it."""
    deadline = time.monotonic() + timeout
    streak, wanted = 0, 2 + 3 * (workers - 1)
    while time.monotonic() < deadline:
        try:
            streak = streak + 1 if settled(write_counters(proxy_url)) else 0
        except (httpx.HTTPError, KeyError, ValueError):
            streak = 0
        if streak >= wanted:
            return True
        time.sleep(0.25 if workers == 1 else 0.1)
    return False


def counter_growth(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> Counter[str]:
    """How much each running write counter grew (``part.name``), zero growth left out."""
    grown: Counter[str] = Counter()
    for part, values in after.items():
        for name, value in values.items():
            if name != "pending" and value != before.get(part, {}).get(name, 0):
                grown[f"{part}.{name}"] = value - before.get(part, {}).get(name, 0)
    return grown
