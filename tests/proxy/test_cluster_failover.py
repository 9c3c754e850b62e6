"""A Redis Cluster master killed under load: its replica takes over, no client request fails,
and every update is written exactly once except those Redis's asynchronous replication lost.

Figures (printed): requests, failed requests, failover time, and per agent the outcomes
learnt against the evidence and stats counts in Redis afterwards.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from support.load import Load
from support.redis_cluster import RedisClusterNodes
from support.redis_targets import RedisTarget
from support.servers import FakeUpstream, UvicornThread
from support.tracking_support import Proxy, config_dict, state_on
from support.waiting import wait_for

from proxy.app import create_app
from proxy.config.settings import parse_config

MODELS = ("m1", "m2")
BEFORE, AFTER = 150, 150
"""Requests answered before the kill, and after the replica took over."""


def one_agent_per_master(cluster: RedisClusterNodes) -> dict[str, int]:
    """Agent name -> port of the master serving its keys, one agent per master."""
    chosen: dict[int, str] = {}
    for i in range(100):
        agent = f"agent-{i}"
        chosen.setdefault(cluster.master_of(f"{{{agent}}}".encode()).port, agent)
    return {agent: port for port, agent in chosen.items()}


def learnt(proxy: Proxy, agent: str) -> int:
    """Outcomes in the agent's table (each adds 1 to successes + failures), to the nearest one
    (a whole count: float sums drift by ~1e-13)."""
    total = sum(proxy.evidence(agent, model).total for model in MODELS)
    assert abs(total - round(total)) < 1e-6, total  # whole outcomes only, none half-applied
    return round(total)


def calls(proxy: Proxy, agent: str) -> int:
    rows = proxy.get(f"/v1/stats?agent={agent}").json()["agents"][0]["models"]
    return int(sum(row["calls"] for row in rows))


def test_a_master_killed_under_load_fails_over_without_a_failed_request(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    with RedisClusterNodes(tmp_path / "cluster") as cluster:
        target = RedisTarget(cluster.url, cluster=True)
        agents = one_agent_per_master(cluster)
        victim_agent = next(iter(agents))
        victim = cluster.master_of(f"{{{victim_agent}}}".encode())
        # evidence = sums: no per-choice discount, no change detector
        router = {"policy": "thompson", "policy_options": {"choice_discount": 0.0, "change_memory": 0.0}}
        parsed = parse_config(config_dict(fake_upstream, MODELS, router=router, redis=target.config()))
        store = target.store(clock=time.time, socket_timeout=0.5, connect_timeout=0.5)
        state = state_on(parsed, store)
        app = create_app(parsed, state=state, rng=random.Random(0))
        with UvicornThread(app) as server, Load([server.url], list(agents), threads=4) as load:
            proxy = Proxy(server.url, app.state.services, store, target)
            wait_for(lambda: load.answered_total() >= BEFORE, timeout=60)
            killed_at = time.monotonic()
            cluster.fail_over(victim)
            failover_s = time.monotonic() - killed_at
            resumed = load.answered_total()
            wait_for(lambda: load.answered_total() >= resumed + AFTER, timeout=60)
            load.stop()
            wait_for(lambda: state.posteriors.counters()["pending"] == 0, timeout=30)
            wait_for(lambda: state.tracking.counters()["pending"] == 0, timeout=30)
            figures = {a: (load.answered[a], learnt(proxy, a), calls(proxy, a)) for a in agents}
        counters = state.counters()
    total = sum(load.answered.values())
    print(f"\ncluster failover: {total} requests, {len(load.failures)} failed, "
          f"failover {failover_s:.2f} s (kill -> replica serving, node timeout 1 s); counters {counters}")
    for agent, (answered, evidence, counted) in figures.items():
        where = "killed master" if agent == victim_agent else "other master"
        print(f"  {agent} ({where}): answered {answered}, evidence {evidence} "
              f"(lost {answered - evidence}), stats calls {counted} (lost {answered - counted})")
    assert load.failures == []
    for agent, (answered, evidence, counted) in figures.items():
        assert evidence <= answered and counted <= answered  # never applied twice
        if agent != victim_agent:
            assert (evidence, counted) == (answered, answered)  # other masters: nothing lost
    assert counters["store"]["dropped_updates"] == counters["tracking"]["dropped_updates"] == 0
