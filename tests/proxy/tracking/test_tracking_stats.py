"""Stats and workflow summaries agree exactly with a scripted mix of agents, models, failures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import httpx
import openai
import pytest
from support.servers import FakeUpstream
from support.tracking_support import Starter, backend, chat, config_dict, start_proxy

__all__ = ["backend", "start_proxy"]



class Client(Protocol):
    """What the checks need of a proxy: SDK clients and GET."""

    def client(self, agent: str, workflow: str | None = None) -> openai.OpenAI: ...

    def get(self, path: str, **kw: Any) -> httpx.Response: ...


OK: dict[str, Any] = {}
E503: dict[str, Any] = {"fail_status": 503}
E500: dict[str, Any] = {"fail_status": 500}
MODELS = ("m1", "m2", "m3")
# (agent, workflow, answering model or None when every model failed)
PLAN: list[tuple[str, str | None, str | None]] = [
    ("planner", "wf-A", "m2"),  # m1 503 -> m2
    ("planner", "wf-A", "m1"),
    ("planner", "wf-A", "m3"),  # m1 500 -> m2 503 -> m3
    ("coder", "wf-A", "m2"),
    ("coder", "wf-A", "m3"),  # m2 503 -> m3
    ("planner", None, "m1"),
    ("planner", "wf-B", None),  # m1, m2, m3 all 503
]
SCRIPTS = {
    "m1": [E503, OK, E500, OK, E503],
    "m2": [OK, E503, OK, E503, E503],
    "m3": [OK, OK, E503],
}


def scripted_config(upstream: FakeUpstream) -> dict[str, Any]:
    for model, steps in SCRIPTS.items():
        upstream.script(model, steps)
    return config_dict(upstream, MODELS, agents={"coder": {"models": ["m2", "m3"]}})


def run_plan(proxies: Sequence[Client]) -> dict[tuple[str, str], list[int]]:
    """Send PLAN round-robin over ``proxies``; tokens [in, out] per (agent, answering model)."""
    tokens: dict[tuple[str, str], list[int]] = {}
    for i, (agent, workflow, answer) in enumerate(PLAN):
        with proxies[i % len(proxies)].client(agent, workflow) as client:
            if answer is None:
                with pytest.raises(openai.APIStatusError) as info:
                    chat(client)
                assert info.value.status_code == 502
                continue
            _, model, usage = chat(client)
        assert model == answer, (i, model)
        cell = tokens.setdefault((agent, model), [0, 0])
        cell[0] += usage.prompt_tokens
        cell[1] += usage.completion_tokens
    return tokens


# (calls, successes, failures, fallbacks, decisions) per agent and model
EXPECTED_STATS = {
    "planner": {"m1": (5, 2, 3, 0, 5), "m2": (3, 1, 2, 3, 0), "m3": (2, 1, 1, 2, 0)},
    "coder": {"m2": (2, 1, 1, 0, 2), "m3": (1, 1, 0, 1, 0)},
}
# (calls, successes, failures, fallbacks) per (agent, model) in wf-A
EXPECTED_WF_A = {
    ("planner", "m1"): (3, 1, 2, 0),
    ("planner", "m2"): (2, 1, 1, 2),
    ("planner", "m3"): (1, 1, 0, 1),
    ("coder", "m2"): (2, 1, 1, 0),
    ("coder", "m3"): (1, 1, 0, 1),
}


def check_stats(proxy: Client, tokens: dict[tuple[str, str], list[int]]) -> None:
    body = proxy.get("/v1/stats").json()
    agents = {row["agent"]: row for row in body["agents"]}
    assert set(agents) == set(EXPECTED_STATS)
    for agent, models in EXPECTED_STATS.items():
        rows = {row["model"]: row for row in agents[agent]["models"]}
        for model, (calls, ok, failed, fallbacks, decisions) in models.items():
            row = rows[model]
            got = (row["calls"], row["successes"], row["failures"], row["fallbacks"], row["decisions"])
            assert got == (calls, ok, failed, fallbacks, decisions), (agent, model, row)
            assert row["failures_by_kind"] == ({"server_error": failed} if failed else {})
            assert [row["tokens_in"], row["tokens_out"]] == tokens.get((agent, model), [0, 0])
            assert (row["latency_s"]["p50"] is None) == (ok == 0)
            assert row["quality_mean"] == (1.0 if ok else None)
            assert row["posterior"]["alpha"] == 1.0  # the fixed policy learns nothing
        assert agents[agent]["requests"] == sum(d for *_, d in models.values())
    one = proxy.get("/v1/stats", params={"agent": "coder"}).json()
    assert [row["agent"] for row in one["agents"]] == ["coder"]


def check_workflows(proxy: Client, tokens: dict[tuple[str, str], list[int]]) -> None:
    wf = proxy.get("/v1/workflows/wf-A").json()
    assert wf["requests"] == 5 and wf["statuses"] == {"success": 5}
    assert wf["agents"] == ["coder", "planner"] and not wf["finished"]
    usage = {(row["agent"], row["model"]): row for row in wf["usage"]}
    assert set(usage) == set(EXPECTED_WF_A)
    for key, expected in EXPECTED_WF_A.items():
        row = usage[key]
        assert (row["calls"], row["successes"], row["failures"], row["fallbacks"]) == expected, key
    assert wf["totals"]["calls"] == 9 and wf["totals"]["failures"] == 4 and wf["totals"]["fallbacks"] == 4
    wf_tokens = [sum(tokens[k][i] for k in tokens if k != ("planner", "m1")) for i in (0, 1)]
    first = tokens[("planner", "m1")]  # one of planner/m1's two answers was outside wf-A
    assert wf["totals"]["tokens_in"] == wf_tokens[0] + first[0] // 2
    assert wf["totals"]["tokens_out"] == wf_tokens[1] + first[1] // 2
    assert len(wf["request_ids"]) == 5 and wf["first_seen"] <= wf["last_seen"]
    wf_b = proxy.get("/v1/workflows/wf-B").json()
    assert wf_b["statuses"] == {"failed": 1} and wf_b["totals"]["failures"] == 3
    assert wf_b["totals"]["fallbacks"] == 2 and wf_b["totals"]["tokens_in"] == 0
    listed = proxy.get("/v1/workflows", params={"agent": "planner"}).json()["data"]
    assert [row["id"] for row in listed] == ["wf-B", "wf-A"]
    assert [row["id"] for row in proxy.get("/v1/workflows?agent=coder").json()["data"]] == ["wf-A"]
    assert [row["id"] for row in proxy.get("/v1/workflows?limit=1").json()["data"]] == ["wf-B"]


def test_stats_and_workflows_match_the_requests(start_proxy: Starter, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_default(prompt_tokens=11)
    proxy = start_proxy(scripted_config(fake_upstream))
    tokens = run_plan([proxy])
    proxy.wait_recorded(len(PLAN))
    check_stats(proxy, tokens)
    check_workflows(proxy, tokens)


@pytest.mark.parametrize("backend", ["redis"])
def test_two_proxies_sharing_redis_agree(start_proxy: Starter, fake_upstream: FakeUpstream) -> None:
    """Two apps with their own RedisStore and client on one redis-server: one shared view."""
    fake_upstream.set_default(prompt_tokens=11)
    config = scripted_config(fake_upstream)
    proxies = [start_proxy(config), start_proxy(config)]
    tokens = run_plan(proxies)
    proxies[0].wait_recorded(4)
    proxies[1].wait_recorded(3)
    for proxy in proxies:
        check_stats(proxy, tokens)
        check_workflows(proxy, tokens)
