"""Updates lost when Redis freezes (SIGSTOP) or is killed and restarted under load.

Usage: python bench/outage_load.py [--rate 2000] [--outage 6000] [--agents 8] [--json]

Drives the posterior store (RedisStore) and the tracking backend (RedisTracking) the way the
proxy's learner and tracker do after each response: per request, one delta to the agent's
table and one to the pooled table, and one tracked outcome (stats, workflow, decision
record), each request a task of its own, paced at ``--rate`` requests/s. Phases: warm-up;
Redis frozen (SIGSTOP) while ``--outage`` requests are made, then SIGCONT; Redis killed
(SIGKILL) while ``--outage`` requests are made, then restarted (append-only file, fsync
always, so Redis itself loses nothing it acknowledged); tail. Then flushes (bounded) and
compares Redis with what was sent: lost posterior mass (per agent and pooled), stats calls,
workflow requests and decision records; pooled = sum of agents; every agent listed.

Prints one line per figure (or one JSON object with ``--json``). Starts its own
redis-server on a free port. Works on any revision whose RedisStore/RedisTracking take these
constructor arguments (to measure before/after, run it with PYTHONPATH at the old tree).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from policies.base import POOLED, Delta, Table
from proxy.tracking.records import DecisionRecord, Tracked
from proxy.tracking.redis_backend import RedisTracking
from storage.redis.store import RedisStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.redis_server import RedisServer

MODELS = ("m0", "m1", "m2", "m3")
PER_WORKFLOW = 50
FLUSH_LIMIT_S = 60.0


def outcome(i: int, agents: int) -> tuple[str, str, float, float, Tracked]:
    """Request ``i``: its agent, model, success/failure masses and tracked outcome."""
    agent, model = f"agent-{i % agents}", MODELS[(i // agents) % len(MODELS)]
    ok = float(i % 3 != 0)
    workflow = f"wf-{agent}-{i // (agents * PER_WORKFLOW)}"
    record = DecisionRecord(
        request_id=f"r{i}", agent=agent, context="_all", candidates=MODELS, model=model,
        workflow=workflow, latency_s=0.25, ttft_s=None, cost_usd=None, quality=ok, applied=ok,
    )  # fmt: skip
    tracked = Tracked(
        agent=agent, workflow=workflow, request_id=f"r{i}", at=time.time(),
        stats={f"{model}|calls": 1.0, f"{model}|ok": ok}, workflow_counts={"requests": 1.0},
        decision=record,
    )  # fmt: skip
    return agent, model, ok, 1.0 - ok, tracked


class Load:
    """Requests paced at ``rate``/s, each written as its own task."""

    def __init__(self, store: RedisStore, tracking: RedisTracking, rate: float, agents: int) -> None:
        self.store, self.tracking, self.rate, self.agents = store, tracking, rate, agents
        self.sent = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.busy_s = 0.0

    async def one(self, i: int) -> None:
        agent, model, s, f, tracked = outcome(i, self.agents)
        await self.store.apply([Delta(Table(agent), model, s, f), Delta(Table(POOLED), model, s, f)])
        await self.tracking.write(tracked)

    async def run(self, n: int) -> None:
        """Send ``n`` more requests at the rate (behind schedule: as fast as possible)."""
        start = time.monotonic()
        for k in range(n):
            delay = start + k / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self.one(self.sent))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            self.sent += 1
        self.busy_s += time.monotonic() - start

    async def settle(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks))


async def flushed(store: RedisStore, tracking: RedisTracking) -> None:
    deadline = time.monotonic() + FLUSH_LIMIT_S
    while time.monotonic() < deadline:
        if await store.flush() and await tracking.writer.flush():
            return
        await asyncio.sleep(0.2)


def expected(sent: int, agents: int) -> dict[str, Any]:
    post: dict[tuple[str, str], list[float]] = {}
    stats_calls: dict[str, float] = {}
    for i in range(sent):
        agent, model, s, f, _ = outcome(i, agents)
        for scope in (agent, POOLED):
            cell = post.setdefault((scope, model), [0.0, 0.0])
            cell[0] += s
            cell[1] += f
        stats_calls[agent] = stats_calls.get(agent, 0.0) + 1
    return {"post": post, "stats_calls": stats_calls}


def measure(url: str, sent: int, agents: int) -> dict[str, Any]:
    want = expected(sent, agents)
    direct = redis.Redis.from_url(url, decode_responses=True)

    def cell(scope: str, model: str) -> tuple[float, float]:
        tag = "%2A" if scope == POOLED else scope
        s, f = direct.hmget(f"mm:{{{tag}}}:post:_all", f"{model}:s", f"{model}:f")
        return float(s or 0), float(f or 0)

    lost_post = sum(s + f - sum(cell(scope, model)) for (scope, model), (s, f) in want["post"].items())
    pooled_mismatch = 0.0
    for model in MODELS:
        cells = [cell(f"agent-{a}", model) for a in range(agents)]
        pooled = cell(POOLED, model)
        pooled_mismatch += sum(abs(pooled[k] - sum(c[k] for c in cells)) for k in (0, 1))
    lost_stats = 0.0
    for agent, calls in want["stats_calls"].items():
        got = direct.hgetall(f"mm:{{{agent}}}:stats")
        lost_stats += calls - sum(float(v) for k, v in got.items() if k.endswith("|calls"))
    workflow_requests = sum(float(direct.hget(k, "requests") or 0) for k in direct.scan_iter("mm:wf:*", 1000)
                            if not k.endswith(":reqs"))  # fmt: skip
    records = sum(1 for _ in direct.scan_iter("mm:req:*", 1000))
    listed = direct.smembers("mm:stats:agents")
    direct.close()
    return {
        "lost_posterior": lost_post,
        "lost_stats_calls": lost_stats,
        "lost_workflow_requests": sent - workflow_requests,
        "lost_decision_records": sent - records,
        "pooled_minus_sum_of_agents": pooled_mismatch,
        "agents_listed": len(listed),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis", persistent=True).start()
        try:
            return await scenario(server, args)
        finally:
            if server.process is not None:
                os.kill(server.process.pid, signal.SIGCONT)
            server.stop()


async def scenario(server: RedisServer, args: argparse.Namespace) -> dict[str, Any]:
    store = RedisStore.from_url(server.url, retry_interval_s=0.2)
    tracking = RedisTracking(
        store.client, prefix="mm", clock=time.time, retention_s=86_400.0, decision_ttl_s=86_400.0,
        retry_interval_s=0.2,
    )  # fmt: skip
    await store.start()
    await tracking.start()
    load = Load(store, tracking, args.rate, args.agents)
    await load.run(args.warm)
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    stall_start = time.monotonic()
    await load.run(args.outage)
    stall_s = time.monotonic() - stall_start
    os.kill(server.process.pid, signal.SIGCONT)
    await load.run(args.warm)
    server.stop(hard=True)
    down_start = time.monotonic()
    await load.run(args.outage)
    down_s = time.monotonic() - down_start
    server.start()
    await load.run(args.warm)
    await load.settle()
    await flushed(store, tracking)
    figures = measure(server.url, load.sent, args.agents)
    figures.update(
        requests=load.sent,
        rate_reached=round(load.sent / load.busy_s),
        stall_s=round(stall_s, 2),
        restart_outage_s=round(down_s, 2),
        store_dropped=store.dropped_updates,
        tracking_dropped=tracking.dropped_updates,
        pending_after=store.pending + tracking.pending,
    )
    await tracking.close()
    await store.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="requests per second")
    parser.add_argument("--outage", type=int, default=6000, help="requests during each outage")
    parser.add_argument("--warm", type=int, default=1000, help="requests before, between and after")
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    if args.json:
        print(json.dumps(figures))
        return
    for name, value in figures.items():
        print(f"{name:28} {value}")


if __name__ == "__main__":
    main()
