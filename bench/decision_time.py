"""Decision time in microseconds: the policy alone, and with the store read before it.

A decision is ``store.load(policy.tables(request), candidates)`` then ``policy.rank``. Shapes
are those of a real request: the "thompson" policy (pooled + agent + agent/context tables,
exploration 0.02) over 3, 11 and 60 candidates, with evidence in every cell (tens to thousands
of observations, as after weeks of traffic). Each figure is the median and the 99th
percentile of per-call times over ``--n`` calls, measured one call at a time with
perf_counter_ns. MemoryStore runs in process; RedisStore talks to a redis-server on loopback
(started here on a free port). The propensity estimate (64 Thompson draws) runs off the
response path, in the learner; it is shown for scale.

Usage: python bench/decision_time.py [--n 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from policies.base import POOLED, DecisionRequest, Delta, PosteriorStore, Snapshot, Table
from policies.probes import PROBES
from policies.registry import build_policy
from policies.thompson import ThompsonPolicy
from storage.embedded.store import MemoryStore
from storage.redis.client import connect
from storage.redis.store import RedisStore

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.redis_server import RedisServer

AGENT, CONTEXT = "support-bot", "code"
HALF_LIFE_S = 86_400.0  # the router default
SIZES = (3, 11, 60)  # candidates per decision: small, RouterBench, a large LiteLLM config


def request_for(size: int) -> DecisionRequest:
    return DecisionRequest(AGENT, CONTEXT, tuple(f"provider/model-{i:02d}" for i in range(size)))


def policy() -> ThompsonPolicy:
    built = build_policy("thompson", exploration_rate=0.02)
    assert isinstance(built, ThompsonPolicy)
    return built


def history(request: DecisionRequest, tables: tuple[Table, ...], seed: int = 7) -> list[Delta]:
    """Evidence for every (table, model): coarser tables hold more, success rates 0.5-0.95."""
    rng = random.Random(seed)
    scale = {Table(POOLED): 40.0, Table(AGENT): 8.0, Table(AGENT, CONTEXT): 1.0}
    deltas = []
    for model in request.candidates:
        rate = rng.uniform(0.5, 0.95)
        for table in tables:
            n = rng.uniform(20, 400) * scale.get(table, 1.0)
            if table.context.startswith(PROBES):  # last uses; no re-try owed
                deltas.append(Delta(table, model, n, 0.0))
                continue
            deltas.append(Delta(table, model, rate * n, (1.0 - rate) * n))
    return deltas


def snapshot_of(deltas: list[Delta]) -> Snapshot:
    store = MemoryStore()
    store.apply_now(deltas)
    tables = tuple(dict.fromkeys(d.table for d in deltas))
    models = tuple(dict.fromkeys(d.model for d in deltas))
    return store.load_now(tables, models)


def summary(name: str, samples_ns: list[int]) -> str:
    ordered = sorted(samples_ns)
    median = statistics.median(ordered) / 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000
    return f"{name:<54} median {median:8.1f} us   p99 {p99:8.1f} us"


def time_sync(fn: Callable[[], object], n: int) -> list[int]:
    for _ in range(min(n, 500)):  # warm up
        fn()
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return samples


async def time_async(fn: Callable[[], Awaitable[object]], n: int) -> list[int]:
    for _ in range(min(n, 500)):
        await fn()
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        await fn()
        samples.append(time.perf_counter_ns() - start)
    return samples


def bench_policy(n: int) -> None:
    pol, rng = policy(), random.Random(1)
    for size in SIZES:
        request = request_for(size)
        snapshot = snapshot_of(history(request, pol.tables(request)))
        rank = functools.partial(pol.rank, request, snapshot, rng)
        print(summary(f"policy.rank, {size} candidates", time_sync(rank, n)))
    for size in SIZES:
        request = request_for(size)
        snapshot = snapshot_of(history(request, pol.tables(request)))
        estimate = functools.partial(pol.propensities, request, snapshot, rng)
        print(summary(f"propensity, 64 draws, {size} cand. (off path)", time_sync(estimate, max(1, n // 10))))


async def bench_store(label: str, store: PosteriorStore, n: int) -> None:
    for size in SIZES:
        await bench_store_size(label, store, request_for(size), n)


async def bench_store_size(label: str, store: PosteriorStore, request: DecisionRequest, n: int) -> None:
    pol, rng = policy(), random.Random(1)
    tables = pol.tables(request)
    await store.apply(history(request, tables))

    async def load() -> Snapshot:
        return await store.load(tables, request.candidates)

    async def decide() -> object:
        return pol.rank(request, await store.load(tables, request.candidates), rng)

    size = len(request.candidates)
    print(summary(f"{label}.load, {size} candidates", await time_async(load, n)))
    print(summary(f"{label}.load + rank, {size} candidates", await time_async(decide, n)))


async def bench_ping(url: str, n: int) -> None:
    client = connect(url, cluster=False, socket_timeout=1.0, connect_timeout=1.0)
    await client.ping()
    print(summary("redis PING round trip (floor)", await time_async(client.ping, n)))
    await client.aclose()


async def main(n: int) -> None:
    tables = len(policy().tables(request_for(3)))
    print(f"decision = store.load({tables} tables x candidates) + ThompsonPolicy.rank; {n} calls each\n")
    bench_policy(n)
    print()
    await bench_store("MemoryStore", MemoryStore(), n)
    await bench_store("MemoryStore(half-life 1 d)", MemoryStore(half_life_s=HALF_LIFE_S), n)
    print()
    with RedisServer(Path(tempfile.mkdtemp(prefix="bench-decision-redis-"))) as server:
        await bench_ping(server.url, n // 4)
        store = RedisStore.from_url(
            server.url, half_life_s=HALF_LIFE_S, socket_timeout=1.0, connect_timeout=1.0
        )
        await bench_store("RedisStore(half-life 1 d)", store, n // 4)
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="calls per in-process figure (Redis: n/4)")
    asyncio.run(main(parser.parse_args().n))
