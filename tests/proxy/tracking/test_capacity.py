"""What Redis holds per request, per agent and per workflow (MEMORY USAGE on real keys).

A proxy on Redis serves AGENTS agents, each in WORKFLOWS workflows of 4, 8, ... requests,
over three models (one prompt context); every key is then sized with MEMORY USAGE and
grouped. The figures are printed and checked against the README's "Capacity" section (within
35%: allocator rounding varies with Redis versions).
"""

from __future__ import annotations

import re
from collections import defaultdict
from statistics import mean

import pytest
import redis
from support.redis_server import RedisServer
from support.servers import FakeUpstream
from support.tracking_support import Starter, backend, chat, config_dict, start_proxy

__all__ = ["backend", "start_proxy"]

AGENTS, WORKFLOWS, STEP = 4, 5, 4
README_BYTES = {
    "decision record": 312,
    "per agent": 2_500,
    "dashboard per agent": 18_000,
    "per workflow": 700,
    "request id in a workflow": 43,
}
"""The README's figures (bytes)."""


def kind(key: str) -> str:
    if key.startswith("mm:req:"):
        return "decision record"
    if key.startswith("mm:seq:"):
        return "writer sequences"
    if re.fullmatch(r"mm:wf:\{.*\}(:reqs)?", key):
        return "per workflow"
    if key.startswith("mm:{%2A}:") or key in ("mm:wfs", "mm:stats:agents"):
        return "shared"
    if re.fullmatch(r"mm:\{.*\}:(tl:\d+|decisions)", key):
        return "dashboard per agent"
    return "per agent"


@pytest.mark.parametrize("backend", ["redis"])
def test_bytes_per_request_agent_and_workflow(
    start_proxy: Starter, fake_upstream: FakeUpstream, redis_server: RedisServer
) -> None:
    proxy = start_proxy(config_dict(fake_upstream, ("m1", "m2", "m3"), router={"policy": "thompson"}))
    lengths = [STEP * (w + 1) for w in range(WORKFLOWS)]
    for a in range(AGENTS):
        for w, length in enumerate(lengths):
            client = proxy.client(f"agent-{a}", workflow=f"wf-{a}-{w}")
            for _ in range(length):
                chat(client)
    requests = AGENTS * sum(lengths)
    proxy.wait_recorded(requests)
    sizes: dict[str, list[int]] = defaultdict(list)
    workflow: dict[int, list[int]] = defaultdict(list)  # requests in it -> bytes of its keys
    with redis.Redis.from_url(redis_server.url, decode_responses=True) as direct:
        for _ in range(100):  # written behind the responses: wait until every record is there
            if len(list(direct.scan_iter("mm:req:*"))) == requests:
                break
            direct.execute_command("WAIT", 0, 50)
        for key in direct.scan_iter("mm:*"):
            sizes[kind(key)].append(int(direct.memory_usage(key, samples=0) or 0))
        for a in range(AGENTS):
            for w, length in enumerate(lengths):
                key = f"mm:wf:{{wf-{a}-{w}}}"
                used = [int(direct.memory_usage(k, samples=0)) for k in (key, key + ":reqs")]
                workflow[length].append(sum(used))
    per_id = (mean(workflow[lengths[-1]]) - mean(workflow[lengths[0]])) / (lengths[-1] - lengths[0])
    measured = {
        "decision record": sum(sizes["decision record"]) / requests,
        "per agent": sum(sizes["per agent"]) / AGENTS,
        "dashboard per agent": sum(sizes["dashboard per agent"]) / AGENTS,
        "per workflow": mean(workflow[lengths[0]]) - lengths[0] * per_id,
        "request id in a workflow": per_id,
    }
    print({name: round(value) for name, value in measured.items()}, {k: sum(v) for k, v in sizes.items()})
    assert len(sizes["decision record"]) == requests
    for name, figure in README_BYTES.items():
        assert 0.65 * figure <= measured[name] <= 1.35 * figure, (name, measured[name], figure)
