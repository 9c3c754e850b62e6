"""Four ``model-manager serve`` processes on one Redis under concurrent load from several agents.

Sums hold exactly across replicas: an agent's evidence equals the sum of its prompt-kind
tables, the pooled table the sum of every agent's, and each equals the requests answered;
stats and workflow counts equal them too, read on every replica. A 429 cooldown one replica
saw is honoured by the others once they synced (``redis.usage_sync_s``).
Figures (printed): requests, failures, and the cross-replica lag (a response on one replica
until the next replica's /v1/stats counts it).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support.load import Load
from support.redis_server import RedisServer
from support.redis_targets import RedisTarget
from support.servers import FakeUpstream, ProxyProcess
from support.tracking_support import config_dict

from policies.base import POOLED
from storage.protocols import Dump

REPLICAS = 4
AGENTS = ("alpha", "beta", "gamma")
MODELS = ("m1", "m2", "m3")
REQUESTS = 240
SYNC_S = 0.25


@pytest.fixture
def replicas(fake_upstream: FakeUpstream, redis_server: RedisServer, tmp_path: Path) -> Iterator[list[str]]:
    """URLs of four proxy processes on ``redis_server``, started in parallel."""
    # sums exact: no per-choice discount, no change detector; half the choices random, so
    # every agent keeps every model in play (forced tries alone leave a model that other
    # agents already tried unforced, and ~80 requests an agent may then never pick it)
    options = {"choice_discount": 0.0, "change_memory": 0.0}
    router = {"policy": "thompson", "exploration_rate": 0.5, "policy_options": options}
    config = config_dict(fake_upstream, MODELS, router=router, redis={"usage_sync_s": SYNC_S})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    processes = [ProxyProcess(path, env={"REDIS_URL": redis_server.url}) for _ in range(REPLICAS)]
    with ExitStack() as stack:
        for process in processes:
            stack.callback(process.stop)
        with ThreadPoolExecutor(REPLICAS) as pool:
            list(pool.map(lambda p: p.start(), processes))
        yield [p.url for p in processes]


def counts(url: str, agent: str) -> tuple[float, float]:
    """(stats calls, workflow requests) of ``agent`` as the replica at ``url`` reads them."""
    rows = httpx.get(f"{url}/v1/stats?agent={agent}", timeout=10).json()["agents"][0]["models"]
    workflow = httpx.get(f"{url}/v1/workflows/wf-{agent}", timeout=10).json()
    return sum(row["calls"] for row in rows), workflow["requests"]


def settled(urls: list[str], answered: dict[str, int]) -> bool:
    return all(counts(url, a) == (n, n) for url in urls for a, n in answered.items())


def dump(url: str) -> Dump:
    async def run() -> Dump:
        store = RedisTarget(url, cluster=False).store(socket_timeout=2.0)
        try:
            return await store.dump()
        finally:
            await store.close()

    return asyncio.run(run())


def summed(rows: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Per model, (successes, failures) summed over ``rows``."""
    out: dict[str, tuple[float, float]] = {}
    for row in rows:
        for model, e in row.items():
            s, f = out.get(model, (0.0, 0.0))
            out[model] = (s + e.successes, f + e.failures)
    return out


def close(a: dict[str, tuple[float, float]], b: dict[str, tuple[float, float]]) -> bool:
    models = set(a) | set(b)
    return all(a.get(m, (0, 0)) == pytest.approx(b.get(m, (0, 0)), abs=1e-6) for m in models)


def test_four_replicas_keep_exact_sums_and_share_cooldowns(
    replicas: list[str], fake_upstream: FakeUpstream, redis_server: RedisServer
) -> None:
    with Load(replicas, AGENTS, threads=6, workflow="wf") as load:
        deadline = time.monotonic() + 120
        while load.answered_total() < REQUESTS and time.monotonic() < deadline:
            time.sleep(0.05)
    stopped = time.monotonic()  # then wait (bounded) for the last writes of every replica
    answered = dict(load.answered)
    deadline = stopped + 20
    while not settled(replicas, answered) and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"\nreplicas: {REPLICAS} processes, {sum(answered.values())} requests {answered}, "
          f"{len(load.failures)} failed")
    assert load.failures == []
    for url in replicas:
        for agent, n in answered.items():
            assert counts(url, agent) == (n, n), (url, agent)
    tables = dump(redis_server.url)
    agents_all = []
    for agent, n in answered.items():
        mine = tables[agent]
        whole = mine[""]
        assert sum(e.total for e in whole.values()) == pytest.approx(n)  # one outcome per request
        assert close(summed([row for context, row in mine.items() if context]), summed([whole]))
        agents_all.append(whole)
    assert close(summed([tables[POOLED][""]]), summed(agents_all))
    assert all(load.models[a, m] > 0 for a in AGENTS for m in MODELS)  # every model is in play
    lags = cross_replica_lags(replicas)
    print(f"cross-replica lag (answer on one replica -> its stats counted on the next): "
          f"median {statistics.median(lags) * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms over {len(lags)}")
    check_shared_cooldown(replicas, fake_upstream)


def cross_replica_lags(replicas: list[str], rounds: int = 12) -> list[float]:
    """Seconds from a response on replica i until replica i+1's /v1/stats counts it."""
    lags = []
    with httpx.Client(timeout=10) as http:
        for i in range(rounds):
            here, there = replicas[i % REPLICAS], replicas[(i + 1) % REPLICAS]
            body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
            answer = http.post(f"{here}/v1/chat/completions", json=body, headers={"X-Agent": "lag"})
            assert answer.status_code == 200, answer.text
            answered = time.monotonic()
            while calls_of(http, there, "lag") < i + 1:
                assert time.monotonic() - answered < 10, "another replica never counted the request"
            lags.append(time.monotonic() - answered)
    return lags


def calls_of(http: httpx.Client, url: str, agent: str) -> float:
    agents = http.get(f"{url}/v1/stats?agent={agent}").json()["agents"]
    return sum(row["calls"] for row in agents[0]["models"]) if agents else 0.0


def check_shared_cooldown(replicas: list[str], fake_upstream: FakeUpstream) -> None:
    """m1 answers 429 (Retry-After 60 s) on the first replica; after two sync intervals no
    replica sends m1 anything, although each still routed to it a moment before."""
    fake_upstream.set_profile("m1", fail_status=429, retry_after_s=60)
    first = Load(replicas[:1], ["cooler"], threads=1)
    with first:
        deadline = time.monotonic() + 30
        while fake_upstream.stats().get("m1", {}).get("errors", 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
    hits = fake_upstream.stats()["m1"]["requests"]
    assert first.failures == []
    time.sleep(2 * SYNC_S)
    others = Load(replicas[1:], AGENTS, threads=3)
    with others:
        deadline = time.monotonic() + 60
        while others.answered_total() < 60 and time.monotonic() < deadline:
            time.sleep(0.02)
    print(f"cooldown: after m1's 429 on replica 1, {others.answered_total()} requests on the other "
          f"replicas sent m1 {fake_upstream.stats()['m1']['requests'] - hits}")
    assert others.failures == [] and others.answered_total() >= 60
    assert fake_upstream.stats()["m1"]["requests"] == hits
    assert all(model != "m1" for _, model in others.models)
