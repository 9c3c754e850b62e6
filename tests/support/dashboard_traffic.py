"""Real traffic for the dashboard tests: three agents through the official SDK, a failing
model (fallbacks), prompts of two contexts, a finished workflow and explicit feedback."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import openai

from support.servers import FakeUpstream
from support.tracking_support import SECRET, Proxy

AGENTS = ("writer", "coder", "triage")
MODELS = ("m-fast", "m-smart", "m-broken")
WORKFLOW = "wf-build-42"
PROMPTS = ("Say hello to the team", "Write a python function that reverses a list")


def config(upstream: FakeUpstream, **server: Any) -> dict[str, Any]:
    """Three priced models on the fake upstream; Thompson sampling with some exploration."""
    entries = [
        {
            "model_name": model,
            "litellm_params": {"model": f"openai/{model}", "api_base": upstream.url, "api_key": SECRET},
            "model_info": {"input_cost_per_token": 1e-6 * (i + 1), "output_cost_per_token": 2e-6 * (i + 1)},
        }
        for i, model in enumerate(MODELS)
    ]
    router = {
        "policy": "thompson", "exploration_rate": 0.2, "max_attempts": 3, "attempt_timeout_s": 5,
        "first_chunk_timeout_s": 5, "half_life_s": None, "propensity_samples": 50,
    }
    return {"model_list": entries, "router": router, "server": server}


@dataclass
class Sent:
    """What the traffic produced: request ids per agent (in order) and the workflow's."""

    request_ids: dict[str, list[str]] = field(default_factory=dict)
    workflow_ids: list[str] = field(default_factory=list)
    count: int = 0


def drive(proxy: Proxy, upstream: FakeUpstream, per_agent: int = 8) -> Sent:
    """``per_agent`` requests per agent (the coder's inside WORKFLOW, which is then finished),
    m-broken failing every call; waits until every outcome is recorded."""
    upstream.set_profile("m-broken", failure_rate=1.0, fail_status=500)
    upstream.set_profile("m-smart", latency_ms=40.0)
    sent = Sent()
    for agent in AGENTS:
        workflow = WORKFLOW if agent == "coder" else None
        with client_for(proxy, agent, workflow) as client:
            for i in range(per_agent):
                raw = client.chat.completions.with_raw_response.create(
                    model="auto", messages=[{"role": "user", "content": PROMPTS[i % 2]}]
                )
                raw.parse()
                sent.request_ids.setdefault(agent, []).append(raw.headers["x-request-id"])
                sent.count += 1
    sent.workflow_ids = list(sent.request_ids["coder"])
    proxy.wait_recorded(sent.count)
    headers = proxy_headers(proxy)
    scored = {"request_id": sent.request_ids["writer"][0], "score": 0.9}
    assert proxy.post("/v1/feedback", scored, headers=headers).status_code == 200
    finished = {"outcome": "success", "score": 0.8}
    finish = proxy.post(f"/v1/workflows/{WORKFLOW}/finish", finished, headers=headers)
    assert finish.status_code == 200, finish.text
    return sent


def client_for(proxy: Proxy, agent: str, workflow: str | None = None) -> openai.OpenAI:
    """The official SDK as ``agent`` (with the master key when one is set)."""
    headers = {"X-Agent": agent, **({"X-Workflow": workflow} if workflow else {})}
    key = proxy.services.config.server.master_key or "unused"
    return openai.OpenAI(
        base_url=f"{proxy.url}/v1", api_key=key, max_retries=0, timeout=20, default_headers=headers
    )


def proxy_headers(proxy: Proxy) -> dict[str, str]:
    key = proxy.services.config.server.master_key
    return {} if key is None else {"Authorization": f"Bearer {key}"}
