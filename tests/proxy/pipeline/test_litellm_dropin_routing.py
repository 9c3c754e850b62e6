"""A typical LiteLLM proxy config served by a real proxy, called with the official openai SDK:
non-chat deployments get no chat request, a model with an unknown provider is unavailable
with the reason, bad pin headers and workflow outcomes are 400s, and the LiteLLM keys we do
not honour are logged once at start."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import httpx
import openai
import pytest
import yaml
from support.paths import DATA
from support.proxy_harness import MESSAGES, ProxyFactory, RunningProxy, proxy_factory
from support.servers import FakeUpstream

__all__ = ["proxy_factory"]

MASTER = "sk-master-dropin"
ENV = {"MM_DROPIN_OPENAI_KEY": "sk-dropin", "MM_DROPIN_MASTER_KEY": MASTER}
CHAT_UPSTREAM_MODELS = {"gpt-4o", "gpt-4o-mini", "claude-haiku"}
NON_CHAT = ("text-embedding-3-small", "dall-e-3")


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def dropin(upstream: FakeUpstream) -> dict[str, Any]:
    """The LiteLLM fixture on the fake upstream, plus one deployment with a misspelt provider."""
    text = (DATA / "litellm_proxy_config.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text.replace("API_BASE", upstream.url))
    data["model_list"].append(
        {
            "model_name": "typo",
            "litellm_params": {"model": "opnai/gpt-4o", "api_base": upstream.url, "api_key": "k"},
        }
    )
    return data


@pytest.fixture
def proxy(proxy_factory: ProxyFactory, fake_upstream: FakeUpstream) -> RunningProxy:
    return proxy_factory(dropin(fake_upstream))


def client(proxy: RunningProxy, **headers: str) -> openai.OpenAI:
    return proxy.client(agent="dropin", api_key=MASTER, default_headers={"X-Agent": "dropin", **headers})


def pinned(proxy: RunningProxy, value: str) -> openai.OpenAI:
    return client(proxy, **{"X-Model-Manager-Pin": value})


def test_non_chat_deployments_get_no_chat_request(proxy: RunningProxy, fake_upstream: FakeUpstream) -> None:
    answered: Counter[str] = Counter()
    with client(proxy) as sdk:
        for _ in range(25):
            raw = sdk.chat.completions.with_raw_response.create(model="auto", messages=MESSAGES)
            answered[raw.headers["x-model-manager-model"]] += 1
        listed = {model.id for model in sdk.models.list()}
    assert sum(answered.values()) == 25
    assert set(answered) == {"gpt-4o#1", "gpt-4o#2", "claude-haiku"}  # every chat model was tried
    sent = Counter(body["model"] for body in fake_upstream.bodies())
    assert set(sent) == CHAT_UPSTREAM_MODELS
    assert not set(NON_CHAT) & listed


@pytest.mark.parametrize("model", NON_CHAT)
def test_pinning_a_non_chat_model_is_a_400_naming_its_mode(proxy: RunningProxy, model: str) -> None:
    with pinned(proxy, "true") as sdk, pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model=model, messages=MESSAGES)
    error = caught.value.body
    assert isinstance(error, dict)
    assert (error["code"], error["param"]) == ("wrong_model_mode", "model")
    assert "does not serve chat completions" in error["message"] and "model_info.mode" in error["message"]


def test_an_unknown_provider_is_unavailable_with_the_reason(proxy: RunningProxy) -> None:
    ready = httpx.get(f"{proxy.url}/ready", headers={"Authorization": f"Bearer {MASTER}"}, timeout=10).json()
    reason = ready["unavailable_models"]["typo"]
    assert "unknown provider 'opnai' (did you mean 'openai'?)" in reason
    with pinned(proxy, "true") as sdk, pytest.raises(openai.APIStatusError) as caught:
        sdk.chat.completions.create(model="typo", messages=MESSAGES)
    assert caught.value.status_code == 503
    error = caught.value.body
    assert isinstance(error, dict) and error["code"] == "model_unavailable"
    assert "GET /ready" in error["message"] and "opnai" not in error["message"]


@pytest.mark.parametrize("value", ["maybe", "2", "on", "pin"])
def test_a_pin_header_other_than_true_or_false_is_a_400(proxy: RunningProxy, value: str) -> None:
    with pinned(proxy, value) as sdk, pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="claude-haiku", messages=MESSAGES)
    error = caught.value.body
    assert isinstance(error, dict)
    assert (error["code"], error["param"]) == ("invalid_header", "X-Model-Manager-Pin")
    assert "true or false" in error["message"]


@pytest.mark.parametrize(("value", "is_pin"), [("TRUE", True), ("1", True), ("False", False), ("0", False)])
def test_pin_header_values_are_case_insensitive(
    proxy: RunningProxy, fake_upstream: FakeUpstream, value: str, is_pin: bool
) -> None:
    with pinned(proxy, value) as sdk:
        for _ in range(6):
            sdk.chat.completions.create(model="claude-haiku", messages=MESSAGES)
    sent = {body["model"] for body in fake_upstream.bodies()}
    assert (sent == {"claude-haiku"}) is is_pin


def test_a_workflow_outcome_outside_the_documented_set_is_a_400(proxy: RunningProxy) -> None:
    with client(proxy, **{"X-Workflow": "wf-dropin"}) as sdk:
        sdk.chat.completions.create(model="auto", messages=MESSAGES)
    auth = {"Authorization": f"Bearer {MASTER}"}
    finish = f"{proxy.url}/v1/workflows/wf-dropin/finish"
    bad = httpx.post(finish, json={"outcome": "succeeded"}, headers=auth, timeout=10)
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_outcome", "outcome")
    assert "success, failure, partial, cancelled, unknown" in error["message"]
    assert "succeeded" in error["message"]
    summary = httpx.get(f"{proxy.url}/v1/workflows/wf-dropin", headers=auth, timeout=10).json()
    assert not summary["finished"]
    good = httpx.post(finish, json={"outcome": "partial", "score": 0.5}, headers=auth, timeout=10)
    assert good.status_code == 200 and good.json()["outcome"] == "partial"


def test_unhonoured_litellm_keys_are_logged_once_at_start(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="model_manager"):
        proxy_factory(dropin(fake_upstream))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("config: LiteLLM key ")]
    paths = Counter(line.removeprefix("config: LiteLLM key ").split(":", 1)[0] for line in lines)
    assert paths["litellm_settings.fallbacks"] == 1 and paths["router_settings.routing_strategy"] == 1
    assert paths["general_settings.database_url"] == 1 and paths["litellm_settings.num_retries"] == 1
    assert set(paths.values()) == {1} and len(paths) == 17
