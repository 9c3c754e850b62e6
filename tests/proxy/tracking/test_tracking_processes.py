"""Two real proxy processes (``python -m proxy serve``) sharing one redis-server: each one's
GET /v1/stats and /v1/workflows show the requests served by both, exactly."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import openai
import yaml
from support.redis_server import RedisServer
from support.servers import FakeUpstream, ProxyProcess
from test_tracking_stats import PLAN, check_stats, check_workflows, run_plan, scripted_config

EXPECTED_CALLS = 13  # attempts in PLAN: planner 5 + 3 + 2, coder 2 + 1


class Remote:
    """A proxy process seen through HTTP only."""

    def __init__(self, url: str) -> None:
        self.url = url

    def client(self, agent: str, workflow: str | None = None) -> openai.OpenAI:
        headers = {"X-Agent": agent, **({"X-Workflow": workflow} if workflow else {})}
        return openai.OpenAI(
            base_url=f"{self.url}/v1", api_key="unused", max_retries=0, timeout=20, default_headers=headers
        )

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **kw)

    def wait_calls(self, calls: int, timeout: float = 20.0) -> None:
        """Poll GET /v1/stats until every agent's calls add up to ``calls``."""
        deadline = time.monotonic() + timeout
        while True:
            agents = self.get("/v1/stats").json()["agents"]
            seen = sum(row["calls"] for agent in agents for row in agent["models"])
            if seen >= calls:
                return
            assert time.monotonic() < deadline, f"{seen} calls recorded, wanted {calls}"
            time.sleep(0.05)


def test_two_processes_sharing_redis(
    fake_upstream: FakeUpstream, redis_server: RedisServer, tmp_path: Path
) -> None:
    fake_upstream.set_default(prompt_tokens=11)
    config = scripted_config(fake_upstream)
    config["router"]["direct_forwarding"] = True
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {"REDIS_URL": redis_server.url}
    with ProxyProcess(path, env=env, cwd=tmp_path) as one, ProxyProcess(path, env=env, cwd=tmp_path) as two:
        remotes = [Remote(one.url), Remote(two.url)]
        tokens = run_plan(remotes)
        remotes[0].wait_calls(EXPECTED_CALLS)
        for remote in remotes:
            check_stats(remote, tokens)
            check_workflows(remote, tokens)
    assert len(PLAN) == 7
