"""``POST /v1/embeddings`` through the proxy with the official SDK: pinned to the named model or
tried in a group's order, relayed by the forwarding layer (direct and litellm), never learned from."""

from __future__ import annotations

import httpx
import openai
import pytest
from support.proxy_harness import (
    ProxyFactory,
    RunningProxy,
    _shared_proxy,
    basic_config,
    module_proxy_factory,
    path,
    proxy,
    proxy_factory,
)
from support.servers import FakeUpstream

from proxy.simulator.embeddings import vector

__all__ = ["_shared_proxy", "module_proxy_factory", "path", "proxy", "proxy_factory"]


@pytest.mark.parametrize("encoding_format", ["float", None], ids=["float", "sdk-default-base64"])
def test_embeddings_go_to_the_named_model_only(
    proxy: RunningProxy, fake_upstream: FakeUpstream, encoding_format: str | None
) -> None:
    fmt: dict[str, str] = {"encoding_format": encoding_format} if encoding_format else {}
    with proxy.client() as client:
        raw = client.embeddings.with_raw_response.create(model="m2", input=["alpha", "beta"], **fmt)
    result = raw.parse()
    assert [item.embedding for item in result.data] == [vector("alpha"), vector("beta")]  # exact in float32
    assert result.usage.prompt_tokens == 2
    assert raw.headers["x-model-manager-model"] == "m2" and raw.headers["x-model-manager-attempts"] == "1"
    assert raw.headers["x-request-id"].startswith("mm-")
    [sent] = fake_upstream.bodies("/v1/embeddings")
    assert sent["model"] == "m2" and sent["input"] == ["alpha", "beta"]
    assert fake_upstream.bodies() == []  # no chat call
    assert proxy.services.learner.submitted == proxy.services.learner.recorded
    assert proxy.recorded == []


def test_a_named_model_that_fails_is_not_replaced(proxy: RunningProxy, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("m1", fail_status=503)
    with proxy.client() as client, pytest.raises(openai.APIStatusError) as raised:
        client.embeddings.create(model="m1", input="alpha")
    assert raised.value.status_code == 502
    assert [body["model"] for body in fake_upstream.bodies("/v1/embeddings")] == ["m1"]


def test_a_group_falls_back_in_order_and_learns_nothing(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream
) -> None:
    config = basic_config(fake_upstream, ("m1", "e1", "e2"), groups={"embedders": ["e1", "e2"]})
    running = proxy_factory(config)
    fake_upstream.set_profile("e1", fail_status=500)
    with running.client() as client:
        raw = client.embeddings.with_raw_response.create(
            model="embedders", input="alpha", encoding_format="float"
        )
    assert raw.parse().data[0].embedding == vector("alpha")
    assert raw.headers["x-model-manager-model"] == "e2" and raw.headers["x-model-manager-attempts"] == "2"
    assert [body["model"] for body in fake_upstream.bodies("/v1/embeddings")] == ["e1", "e2"]
    assert running.services.learner.submitted == 0


def test_embedding_mode_deployments_serve_embeddings_and_no_chat(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream
) -> None:
    """Two ``model_info.mode: embedding`` entries sharing a name: a group for embeddings that
    chat routing never sees."""
    config = basic_config(fake_upstream, ("m1",))
    for upstream_name in ("emb-a", "emb-b"):
        params = {**config["model_list"][0]["litellm_params"], "model": f"openai/{upstream_name}"}
        config["model_list"].append(
            {"model_name": "embedder", "litellm_params": params, "model_info": {"mode": "embedding"}}
        )
    running = proxy_factory(config)
    fake_upstream.set_profile("emb-a", fail_status=503)
    with running.client() as client:
        raw = client.embeddings.with_raw_response.create(model="embedder", input="x", encoding_format="float")
        for _ in range(6):
            client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    assert raw.parse().data[0].embedding == vector("x")
    assert raw.headers["x-model-manager-attempts"] == "2"
    assert [body["model"] for body in fake_upstream.bodies("/v1/embeddings")] == ["emb-a", "emb-b"]
    assert {body["model"] for body in fake_upstream.bodies("/v1/chat/completions")} == {"m1"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"model": "nope", "input": "a"}, 404, "model_not_found"),
        ({"model": "m1"}, 400, "invalid_request"),
        ({"model": "m1", "input": [None]}, 400, "invalid_request"),
        ({"input": "a"}, 400, "invalid_request"),
    ],
)
def test_bad_embedding_requests_are_refused(
    proxy: RunningProxy, fake_upstream: FakeUpstream, body: dict[str, object], status: int, code: str
) -> None:
    response = httpx.post(f"{proxy.base_url}/embeddings", json=body)
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert fake_upstream.bodies("/v1/embeddings") == []
