"""``model_info.supported_endpoints`` (LiteLLM's key) marks the deployments that speak the
Responses API natively; a bad value, or a deployment that cannot be relayed natively, is a
ConfigError naming the key path and why."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.config.settings import ConfigError, parse_config
from proxy.forwarding.openai_wire import openai_wire_target

UPSTREAM = "http://127.0.0.1:9/v1"
BOTH = ["/v1/chat/completions", "/v1/responses"]


def config(params: dict[str, Any] | None = None, **info: Any) -> dict[str, Any]:
    litellm = params or {"model": "openai/gpt-4o", "api_base": UPSTREAM, "api_key": "sk-x"}
    entry: dict[str, Any] = {"model_name": "gpt", "litellm_params": litellm}
    if info:
        entry["model_info"] = info
    return {"model_list": [entry, {"model_name": "plain", "litellm_params": {**litellm}}]}


@pytest.mark.parametrize("endpoints", [BOTH, ["/responses"], ["/v1/responses/"]])
def test_listing_the_responses_endpoint_marks_a_native_deployment(endpoints: list[str]) -> None:
    parsed = parse_config(config(supported_endpoints=endpoints))
    arm = parsed.arms["gpt"]
    assert arm.native_responses and not parsed.arms["plain"].native_responses
    target = openai_wire_target(arm)
    assert target is not None and target.responses_url == f"{UPSTREAM}/responses"


def test_chat_only_endpoints_are_translated() -> None:
    assert not parse_config(config(supported_endpoints=["/v1/chat/completions"])).arms["gpt"].native_responses


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("/v1/responses", "must be a list of strings, got str"),
        ([1], "must be a list of strings"),
        (["responses"], "'responses' is not an endpoint path"),
    ],
)
def test_bad_values_name_the_key(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(config(supported_endpoints=value))
    assert str(raised.value).startswith("model_list[0].model_info.supported_endpoints: ")
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"model": "anthropic/claude-3-5-haiku", "api_key": "sk-x"}, "is not an openai/ model"),
        (
            {"model": "openai/gpt-4o", "api_base": UPSTREAM, "api_key": "sk-x", "drop_params": True},
            "litellm_params.drop_params needs litellm",
        ),
        ({"model": "openai/gpt-4o", "api_base": UPSTREAM}, "it has no api_key"),
    ],
    ids=["other-provider", "litellm-param", "no-key"],
)
def test_a_deployment_that_cannot_be_relayed_natively_is_refused(params: dict[str, Any], reason: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(config(params, supported_endpoints=BOTH))
    message = str(raised.value)
    assert message.startswith(
        "model_list[0].model_info.supported_endpoints: /v1/responses is relayed natively"
    )
    assert reason in message and "translated to chat completions" in message
