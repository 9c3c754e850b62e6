"""Added cost of the tracking hook (stats, workflow, decision record) per outcome.

Usage: python bench/bench_tracking.py [--n 3000]. Starts its own redis-server on a free port.
Times N synthetic outcomes (Thompson policy, 3 tables, 3 candidates, one fallback, in a
workflow) through Learner.record, without and with the tracker's hook, on MemoryStore and
RedisStore. Prints wall and CPU (process_time) microseconds per outcome (the minimum of
REPEATS alternating runs, as these machines are shared and noisy) and the difference;
for Redis it also counts round trips per outcome (pipeline executions: the learner's apply,
and the hook's write) and the hook's script calls per outcome (EVALSHA, from INFO
commandstats).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from proxy.config.settings import parse_config
from proxy.forwarding.base import FailureKind, Summary, Usage
from proxy.pipeline.learning import Learner
from proxy.pipeline.outcome import Attempt, Outcome, Status
from proxy.pipeline.router import Router
from proxy.runtime.state import open_state
from proxy.tracking.tracker import Tracker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.redis_server import RedisServer

MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet")
REPEATS = 5


def config(url: str | None, state_file: Path) -> Any:
    """Redis at ``url`` (2 s timeouts), else embedded and saved to ``state_file``."""
    entries = [{"model_name": m, "litellm_params": {"model": f"openai/{m}"}} for m in MODELS]
    data: dict[str, Any] = {"model_list": entries, "router": {"policy": "thompson", "half_life_s": 3600}}
    data["server"] = {"state_file": str(state_file)}
    if url:
        data["redis"] = {"url": url, "timeout_s": 2.0}
    return parse_config(data)


def outcome(router: Router, i: int) -> Outcome:
    from policies.base import DecisionRequest

    request = DecisionRequest("agent-1", "code", MODELS)
    policy = router.policy_for("agent-1")
    decision = policy.rank(request, {}, random.Random(i))
    first, second = decision.ranking[0], decision.ranking[1]
    summary = Summary(text="def f(): return 1", finish_reason="stop", usage=Usage(120, 40))
    return Outcome(
        request_id=f"mm-{i:032x}",
        decision_request=request,
        decision=decision,
        snapshot={},
        workflow=f"wf-{i // 10}",
        started_at=time.time(),
        attempts=(Attempt(first, FailureKind.SERVER, 0.05), Attempt(second, None, 0.8, 0.2)),
        status=Status.SUCCESS,
        summary=summary,
        latency_s=0.85,
    )


async def fixed_cost(model: str, usage: Usage) -> float:
    return 0.0012


async def run(learner: Learner, router: Router, n: int) -> tuple[float, float]:
    outcomes = [outcome(router, i) for i in range(n)]
    wall, cpu = time.perf_counter(), time.process_time()
    for item in outcomes:
        await learner.record(item)
    return (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6


def evalsha_calls(url: str | None) -> int:
    """EVALSHA calls the Redis at ``url`` served so far (0 without one)."""
    if url is None:
        return 0
    with redis.Redis.from_url(url) as direct:
        stats = direct.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0))


class CountingPipelines:
    """Counts pipeline executions on a redis-py client (one per round trip)."""

    def __init__(self, client: Any) -> None:
        self.count = 0
        original = client.pipeline

        def pipeline(*args: Any, **kw: Any) -> Any:
            self.count += 1
            return original(*args, **kw)

        client.pipeline = pipeline


async def bench(name: str, url: str | None, n: int, tmp: Path) -> None:
    cfg = config(url, tmp / f"{name}.json")
    state = open_state(cfg, time.time)
    store = state.posteriors
    router = Router(cfg)
    plain = Learner(router, store, random.Random(0), propensity=False, cost=fixed_cost)
    tracked = Learner(router, store, random.Random(0), propensity=False, cost=fixed_cost)
    tracker = Tracker(state.tracking, config=cfg, router=router, store=store, clock=time.time)
    tracked.batch_hooks.append(tracker.hook_many)
    await run(plain, router, 200)  # warm up
    await run(tracked, router, 200)
    counter = CountingPipelines(state.redis.client) if state.redis is not None else None
    calls = evalsha_calls(url)
    base_wall, base_cpu = await run(plain, router, n)
    base_trips, base_calls = counter.count if counter else 0, evalsha_calls(url) - calls
    with_wall, with_cpu = await run(tracked, router, n)
    hook_trips = ((counter.count - 2 * base_trips) / n) if counter else 0.0
    hook_calls = (evalsha_calls(url) - calls - 2 * base_calls) / n
    for _ in range(REPEATS - 1):  # busy shared machines: keep the quietest run of each
        wall, cpu = await run(plain, router, n)
        base_wall, base_cpu = min(base_wall, wall), min(base_cpu, cpu)
        wall, cpu = await run(tracked, router, n)
        with_wall, with_cpu = min(with_wall, wall), min(with_cpu, cpu)
    trips = ""
    if counter:
        trips = f"  round trips/outcome: learner {base_trips / n:.2f}, hook {hook_trips:.2f}"
        trips += f"; hook EVALSHA/outcome {hook_calls:.2f}"
    print(
        f"{name:<8} learner only: {base_wall:7.1f} us wall {base_cpu:7.1f} us cpu | with tracking: "
        f"{with_wall:7.1f} us wall {with_cpu:7.1f} us cpu | added: {with_wall - base_wall:6.1f} us wall "
        f"{with_cpu - base_cpu:6.1f} us cpu{trips}"
    )
    await state.close()


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp)) as server:
        await bench("embedded", None, n, Path(tmp))
        await bench("redis", server.url, n, Path(tmp))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    asyncio.run(main(parser.parse_args().n))
