"""Which model answers: auto, unknown names, groups, pinning, agent settings; /v1/models; health."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from support.proxy_harness import (
    MESSAGES,
    ProxyFactory,
    RunningProxy,
    basic_config,
    model_entry,
    module_proxy_factory,
)
from support.servers import FakeUpstream

__all__ = ["module_proxy_factory"]

MODELS = ("m1", "m2", "m3", "m4")


@pytest.fixture(scope="module")
def routed(module_proxy_factory: ProxyFactory, _fake_upstream_session: FakeUpstream) -> RunningProxy:
    """m1..m4 in fixed order; agent ``a`` may use m2, m3; agent ``p`` is pinned to m4."""
    config = basic_config(
        _fake_upstream_session,
        MODELS,
        groups={"pair": ["m1", "m3"], "outside": ["m1", "m4"]},
        agents={"a": {"models": ["m2", "m3"]}, "p": {"pin": "m4"}},
    )
    return module_proxy_factory(config)


def answer(proxy: RunningProxy, model: str, agent: str | None, **headers: str) -> tuple[str, tuple[str, ...]]:
    """The model that answered and the candidates the router considered."""
    before = len(proxy.recorded)
    with proxy.client(agent=agent) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=MESSAGES, extra_headers=headers or None
        )
    outcome, _ = proxy.outcomes(before + 1)[before]
    assert outcome.request_id == raw.headers["x-request-id"]
    assert raw.parse().model == raw.headers["x-model-manager-model"]
    return raw.headers["x-model-manager-model"], outcome.decision_request.candidates


ROUTES: dict[str, tuple[str, str | None, dict[str, str], str, tuple[str, ...]]] = {
    "auto, any agent": ("auto", "b", {}, "m1", MODELS),
    "auto, restricted agent": ("auto", "a", {}, "m2", ("m2", "m3")),
    "no agent header": ("auto", None, {}, "m1", MODELS),
    "unregistered name": ("gpt-4o", "a", {}, "m2", ("m2", "m3")),
    "registered single model is routed": ("m4", "b", {}, "m1", MODELS),
    "group": ("pair", "b", {}, "m1", ("m1", "m3")),
    "group within agent's models": ("pair", "a", {}, "m3", ("m3",)),
    "pin header": ("m3", "b", {"X-Model-Manager-Pin": "true"}, "m3", ("m3",)),
    "pin header 1": ("m2", "a", {"X-Model-Manager-Pin": "1"}, "m2", ("m2",)),
    "pin header names a group": ("pair", "b", {"X-Model-Manager-Pin": "yes"}, "m1", ("m1", "m3")),
    "pin header false routes": ("m3", "b", {"X-Model-Manager-Pin": "false"}, "m1", MODELS),
    "agent pin": ("auto", "p", {}, "m4", ("m4",)),
    "agent pin beats model": ("m1", "p", {}, "m4", ("m4",)),
}


@pytest.mark.parametrize("case", list(ROUTES))
def test_routing(routed: RunningProxy, fake_upstream: FakeUpstream, case: str) -> None:
    model, agent, headers, expected, candidates = ROUTES[case]
    assert answer(routed, model, agent, **headers) == (expected, candidates)
    assert [body["model"] for body in fake_upstream.bodies()] == [expected]


def test_group_with_no_allowed_model_is_403(routed: RunningProxy, fake_upstream: FakeUpstream) -> None:
    with routed.client(agent="a") as client, pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model="outside", messages=MESSAGES)
    assert caught.value.code == "model_not_allowed"
    assert fake_upstream.bodies() == []


def test_fallback_stays_within_the_agent_models(routed: RunningProxy, fake_upstream: FakeUpstream) -> None:
    for model in MODELS:
        fake_upstream.set_profile(model, fail_status=503)
    with routed.client(agent="a") as client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="auto", messages=MESSAGES)
    assert caught.value.status_code == 502
    assert [body["model"] for body in fake_upstream.bodies()] == ["m2", "m3"]


def test_models_lists_models_groups_and_auto(routed: RunningProxy) -> None:
    with routed.client() as client:
        ids = [model.id for model in client.models.list()]
    assert ids == [*MODELS, "pair", "outside", "auto"]


def test_retrieve_one_model_with_the_sdk(routed: RunningProxy) -> None:
    with routed.client() as client:
        for model in ("m3", "pair", "auto"):
            found = client.models.retrieve(model)
            assert (found.id, found.object) == (model, "model")
        with pytest.raises(openai.NotFoundError) as caught:
            client.models.retrieve("gpt-9")
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "model_not_found" and "gpt-9" in body["message"]


def test_too_small_context_is_skipped(proxy_factory_small: RunningProxy, fake_upstream: FakeUpstream) -> None:
    long_prompt: list[ChatCompletionMessageParam] = [{"role": "user", "content": "word " * 400}]
    with proxy_factory_small.client() as client:
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=long_prompt)
    assert raw.headers["x-model-manager-model"] == "m2"
    assert [body["model"] for body in fake_upstream.bodies()] == ["m2"]


@pytest.fixture(scope="module")
def proxy_factory_small(
    module_proxy_factory: ProxyFactory, _fake_upstream_session: FakeUpstream
) -> RunningProxy:
    """m1 declares a 100-token context window; m2 has none."""
    config: dict[str, Any] = basic_config(_fake_upstream_session)
    config["model_list"][0]["model_info"] = {"max_input_tokens": 100}
    return module_proxy_factory(config)


def test_health_and_ready(routed: RunningProxy) -> None:
    health = httpx.get(f"{routed.url}/health", timeout=5)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = httpx.get(f"{routed.url}/ready", timeout=5)
    assert ready.status_code == 200
    payload = ready.json()
    assert payload["status"] == "ready" and payload["store_reachable"] is True
    assert payload["models"] == len(MODELS)
    assert isinstance(payload["asyncio_tasks"], int) and payload["asyncio_tasks"] >= 1  # this request's


def test_deployments_sharing_a_model_name_form_a_group(
    module_proxy_factory: ProxyFactory, _fake_upstream_session: FakeUpstream
) -> None:
    """LiteLLM's load-balancing shape: two entries named "gpt", no ids -> gpt#1, gpt#2."""
    upstream = _fake_upstream_session
    config: dict[str, Any] = basic_config(upstream, ("m1",))
    config["model_list"] += [model_entry("gpt", upstream.url, f"gpt-{x}") for x in ("a", "b")]
    proxy = module_proxy_factory(config)
    with proxy.client(agent="lb") as client:
        assert [m.id for m in client.models.list()] == ["m1", "gpt#1", "gpt#2", "gpt", "auto"]
        raw = client.chat.completions.with_raw_response.create(model="gpt", messages=MESSAGES)
    outcome, _ = proxy.outcomes(1)[0]
    assert outcome.decision_request.candidates == ("gpt#1", "gpt#2")
    assert raw.headers["x-model-manager-model"] == "gpt#1"  # fixed policy: config order
    assert raw.parse().model == "gpt-a" == upstream.bodies()[-1]["model"]  # upstream's name, relayed
