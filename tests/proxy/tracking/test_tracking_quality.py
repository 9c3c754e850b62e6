"""An agent's quality config (off, reweighted) changes the reward it learns from and the stats."""

from __future__ import annotations

import pytest
from support.servers import FakeUpstream
from support.tracking_support import Starter, backend, chat, config_dict, start_proxy

__all__ = ["backend", "start_proxy"]

# agent -> (quality config, expected quality of an empty answer)
AGENTS = {
    "strict": ({}, 0.0),
    "lenient": ({"enabled": False}, 1.0),
    "reweighted": ({"empty": 0.25}, 0.75),
}


def test_agent_quality_config_changes_the_reward(start_proxy: Starter, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("m1", content="")
    config = config_dict(
        fake_upstream,
        ("m1",),
        router={"policy": "thompson", "exploration_rate": 0.0, "reward": {"latency": 0, "cost": 0}},
        agents={agent: {"quality": quality} for agent, (quality, _) in AGENTS.items()},
    )
    proxy = start_proxy(config)
    for agent in AGENTS:
        with proxy.client(agent) as client:
            chat(client)
    proxy.wait_recorded(len(AGENTS))
    for agent, (_, expected) in AGENTS.items():
        learned = proxy.evidence(agent, "m1")  # reward weights: quality only -> reward = quality
        assert learned.successes == pytest.approx(expected, abs=1e-12), agent
        assert learned.failures == pytest.approx(1.0 - expected, abs=1e-12), agent
        row = proxy.get("/v1/stats", params={"agent": agent}).json()["agents"][0]["models"][0]
        assert row["quality_mean"] == expected, agent
