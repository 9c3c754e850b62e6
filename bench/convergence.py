"""End-to-end convergence: how fast the proxy sends each agent's traffic to its best model.

Real parts: the proxy app (create_app) under uvicorn, the fake upstream (simulator) under
uvicorn, the official openai SDK as client, and a redis-server started on a free port.
Two agents with opposite experience: for agent A the first model ``a-one`` always answers
and ``a-two`` fails half its calls (HTTP 503); for agent B it is the other way round
(``b-one`` fails half, ``b-two`` always answers). Router defaults otherwise (thompson,
exploration 0.02, half-life 1 day, 3 attempts, default reward weights), requests sent one
at a time, A and B interleaved, learning asynchronous as in production (no waiting).
litellm is imported before the runs: in a cold process the learner's pricing step waits for
its import (seconds), and decisions made meanwhile see no new evidence.

Printed per store (MemoryStore, RedisStore) and agent: the share of first choices that went
to the best model over the first N requests and over requests N-99..N, for N = 100/500/1000,
averaged over ``--seeds`` seeded runs (and the worst run), plus the share of answers.

Usage: python bench/convergence.py [--requests 1000] [--seeds 3]
"""

from __future__ import annotations

import argparse
import importlib
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
import redis
from openai.types.chat import ChatCompletionMessageParam

from proxy.app import create_app
from proxy.config.settings import parse_config
from proxy.pipeline.learning import Scored
from proxy.pipeline.outcome import Outcome
from proxy.pipeline.services import Services
from proxy.simulator.app import create_simulator_app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.redis_server import RedisServer
from support.servers import FakeUpstream, UvicornThread

BEST = {"A": "a-one", "B": "b-two"}
MODELS = {"A": ("a-one", "a-two"), "B": ("b-one", "b-two")}
FAST = {"latency_ms": 1, "ttft_ms": 1}
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello"}]
CHECKPOINTS = (100, 500, 1000)
WINDOW = 100


def no_delay(server: UvicornThread) -> UvicornThread:
    """TCP_NODELAY on the pre-bound listening socket (else ~40 ms Nagle stalls per request)."""
    server._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return server


def config(upstream_url: str, state_dir: Path, redis_url: str | None) -> dict[str, Any]:
    models = [m for pair in MODELS.values() for m in pair]
    entries = [
        {
            "model_name": m,
            "litellm_params": {"model": f"openai/{m}", "api_base": upstream_url, "api_key": "sk-x"},
        }
        for m in models
    ]
    data: dict[str, Any] = {
        "model_list": entries,
        "agents": {agent: {"models": list(pair)} for agent, pair in MODELS.items()},
        "router": {"policy": "thompson", "attempt_timeout_s": 5, "first_chunk_timeout_s": 5},
        "server": {"state_file": str(state_dir / "state.json")},
    }
    if redis_url is not None:
        data["redis"] = {"url": redis_url, "prefix": f"conv{random.randrange(10**9)}"}
    return data


@contextmanager
def proxy(data: dict[str, Any], seed: int) -> Iterator[tuple[str, list[Outcome]]]:
    """The proxy served; the list fills with every outcome the learner records."""
    app = create_app(parse_config(data), rng=random.Random(seed))
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    async def hook(scored: Scored) -> None:
        with lock:
            outcomes.append(scored.outcome)

    with no_delay(UvicornThread(app)) as server:
        services: Services = app.state.services
        services.learner.hooks.append(hook)
        yield server.url, outcomes
        deadline = time.monotonic() + 10
        while services.learner.recorded < len(outcomes) and time.monotonic() < deadline:
            time.sleep(0.01)


def run(upstream: FakeUpstream, redis_url: str | None, seed: int, requests: int) -> dict[str, Any]:
    upstream.reset()
    for agent, best in BEST.items():
        for model in MODELS[agent]:
            bad = {} if model == best else {"failure_rate": 0.5, "fail_status": 503}
            upstream.set_profile(model, **FAST, **bad)
    answered: dict[str, list[str]] = {agent: [] for agent in MODELS}
    with (
        tempfile.TemporaryDirectory() as state_dir,
        proxy(config(upstream.url, Path(state_dir), redis_url), seed) as (
            url,
            outcomes,
        ),
    ):
        clients = {
            agent: openai.OpenAI(
                base_url=f"{url}/v1", api_key="x", max_retries=0, default_headers={"X-Agent": agent}
            )
            for agent in MODELS
        }
        for _ in range(requests):
            for agent, client in clients.items():
                raw = client.chat.completions.with_raw_response.create(model="auto", messages=MESSAGES)
                answered[agent].append(raw.headers.get("x-model-manager-model", ""))
        for client in clients.values():
            client.close()
        time.sleep(0.2)
    first = {agent: [o.decision.choice for o in outcomes if o.agent == agent] for agent in MODELS}
    return {"first": first, "answered": answered}


def share(items: list[str], model: str) -> float:
    return sum(item == model for item in items) / len(items) if items else float("nan")


def report(name: str, runs: list[dict[str, Any]], requests: int) -> None:
    print(f"\n{name}: share of each agent's traffic to its best model, mean / worst of {len(runs)} runs")
    columns = ("first choice 1..N", "first choice N-99..N", "answers 1..N")
    header = f"{'agent (best)':<14} {'N':>5} {columns[0]:>19} {columns[1]:>21} {columns[2]:>17}"
    print(header)
    print("-" * len(header))
    for agent, best in BEST.items():
        for n in (c for c in CHECKPOINTS if c <= requests):
            cumulative = [share(r["first"][agent][:n], best) for r in runs]
            window = [share(r["first"][agent][max(0, n - WINDOW) : n], best) for r in runs]
            answers = [share(r["answered"][agent][:n], best) for r in runs]
            label = f"{agent} ({best})"
            print(f"{label:<14} {n:>5} {fmt(cumulative):>19} {fmt(window):>21} {fmt(answers):>17}")


def fmt(values: list[float]) -> str:
    return f"{statistics.mean(values):6.1%} / {min(values):6.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per agent")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    # Learning waits for pricing, which waits for litellm's import (a thread started with the
    # app, seconds on these machines): import it now so every run measures warm learning.
    importlib.import_module("proxy.forwarding.litellm_upstream")
    with (
        no_delay(UvicornThread(create_simulator_app(seed=0))) as sim,
        RedisServer(Path(tempfile.mkdtemp(prefix="bench-conv-redis-"))) as server,
    ):
        upstream = FakeUpstream(sim.url)
        for name, url in (("MemoryStore (embedded)", None), ("RedisStore (loopback)", server.url)):
            runs = [run(upstream, url, seed, args.requests) for seed in range(args.seeds)]
            report(name, runs, args.requests)
        with redis.Redis.from_url(server.url) as client:
            client.flushall()
        upstream.close()
    total = f"{args.seeds} seeds x 2 stores x 2 agents x {args.requests} requests"
    print(f"\n{total} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
