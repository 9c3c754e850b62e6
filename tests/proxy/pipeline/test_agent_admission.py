"""agents.allow_unknown / max_unknown / unknown_overflow: a bound on distinct agent names."""

from __future__ import annotations

from typing import Any

import pytest
from support.proxy_harness import MESSAGES, ProxyFactory, basic_config, proxy_factory
from support.servers import FakeUpstream

from proxy.config.settings import ConfigError, parse_config
from proxy.pipeline.agents import AgentAdmission
from proxy.wire.errors import ProxyError

__all__ = ["proxy_factory"]

MODELS = [{"model_name": "m", "litellm_params": {"model": "openai/m", "api_key": "k"}}]


def admission(**agents: Any) -> AgentAdmission:
    return AgentAdmission(parse_config({"model_list": MODELS, "agents": agents}))


def test_unknown_agents_beyond_the_cap_share_the_overflow_agent() -> None:
    gate = admission(listed={}, max_unknown=2)
    served = [gate.agent_for(name) for name in ("u1", "u2", "u3", "u4", "u1", "listed", "default")]
    assert served == ["u1", "u2", "overflow", "overflow", "u1", "listed", "default"]
    assert (gate.admitted, gate.overflowed) == (2, 2)


def test_unknown_agents_beyond_the_cap_are_refused_when_configured() -> None:
    gate = admission(max_unknown=1, unknown_overflow="refuse", overflow_agent="spill")
    assert gate.agent_for("u1") == "u1"
    with pytest.raises(ProxyError) as refused:
        gate.agent_for("u2")
    assert (refused.value.status, refused.value.code) == (429, "too_many_agents")


def test_disallowed_unknown_agents_are_403_and_listed_ones_served() -> None:
    gate = admission(allow_unknown=False, known={})
    assert gate.agent_for("known") == "known" and gate.agent_for("default") == "default"
    with pytest.raises(ProxyError) as refused:
        gate.agent_for("stranger")
    assert (refused.value.status, refused.value.code) == (403, "unknown_agent")


@pytest.mark.parametrize(
    ("agents", "path"),
    [
        ({"max_unknown": -1}, "agents.max_unknown"),
        ({"max_unknown": "many"}, "agents.max_unknown"),
        ({"allow_unknown": "yes"}, "agents.allow_unknown"),
        ({"unknown_overflow": "drop"}, "agents.unknown_overflow"),
        ({"overflow_agent": "-bad"}, "agents.overflow_agent"),
    ],
)
def test_bad_unknown_agent_settings_name_their_key(agents: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError, match=path):
        parse_config({"model_list": MODELS, "agents": agents})


def test_over_the_cap_requests_are_served_as_overflow_or_refused_over_http(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream
) -> None:
    shared = proxy_factory(basic_config(fake_upstream, ("m1",), agents={"max_unknown": 1}))
    body = {"model": "auto", "messages": MESSAGES}
    for agent in ("first", "second"):
        assert shared.post(body, headers={"X-Agent": agent}).status_code == 200
    assert [outcome.agent for outcome, _ in shared.outcomes(2)] == ["first", "overflow"]
    refusing = proxy_factory(
        basic_config(fake_upstream, ("m1",), agents={"max_unknown": 1, "unknown_overflow": "refuse"})
    )
    assert refusing.post(body, headers={"X-Agent": "first"}).status_code == 200
    refused = refusing.post(body, headers={"X-Agent": "second"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_agents"
    assert refused.json()["error"]["param"] == "X-Agent"
