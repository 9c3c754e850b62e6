"""Client disconnects cancel the upstream call and learn nothing; the optional master key."""

from __future__ import annotations

import httpx
import openai
import pytest
from support.proxy_harness import (
    MESSAGES,
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
from support.waiting import wait_for

from proxy.pipeline.outcome import Status

__all__ = ["_shared_proxy", "module_proxy_factory", "path", "proxy", "proxy_factory"]

MASTER_KEY = "mm-master-key-0123456789"





def cancelled(upstream: FakeUpstream, model: str) -> int:
    return upstream.stats().get(model, {}).get("cancelled", 0)


# --- client disconnect -------------------------------------------------------------------


def test_disconnect_while_waiting_cancels_upstream(proxy: RunningProxy, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("m1", hang=True)
    body = {"model": "auto", "messages": MESSAGES}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{proxy.base_url}/chat/completions", json=body, timeout=0.5)
    wait_for(lambda: cancelled(fake_upstream, "m1") == 1)
    outcome, rewards = proxy.last()
    assert outcome.status is Status.CANCELLED
    assert rewards == {}
    assert [body["model"] for body in fake_upstream.bodies()] == ["m1"]  # no fallback after the client left


def test_disconnect_mid_stream_cancels_upstream(proxy: RunningProxy, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("m1", chunks=200, chunk_interval_ms=20)
    body = {"model": "auto", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{proxy.base_url}/chat/completions", json=body, timeout=10) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        first = [next(lines) for _ in range(4)]
    assert sum(line.startswith("data: ") for line in first) >= 2
    wait_for(lambda: cancelled(fake_upstream, "m1") == 1)
    outcome, rewards = proxy.last()
    assert outcome.status is Status.CANCELLED
    assert rewards == {}
    assert fake_upstream.stats()["m1"]["completed"] == 0


def test_sdk_stream_closed_early_is_cancelled(proxy: RunningProxy, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("m1", chunks=200, chunk_interval_ms=20)
    with proxy.client() as client:
        stream = client.chat.completions.create(model="auto", messages=MESSAGES, stream=True)
        next(iter(stream))
        stream.close()
    wait_for(lambda: cancelled(fake_upstream, "m1") == 1)
    outcome, rewards = proxy.last()
    assert (outcome.status, rewards) == (Status.CANCELLED, {})


# --- master key --------------------------------------------------------------------------


@pytest.fixture
def keyed(proxy_factory: ProxyFactory, fake_upstream: FakeUpstream) -> RunningProxy:
    return proxy_factory(basic_config(fake_upstream, server={"master_key": MASTER_KEY}))


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_api_key" and error["type"] == "authentication_error"
    assert error["message"]
    assert MASTER_KEY not in response.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {MASTER_KEY}x"},
        {"Authorization": MASTER_KEY},
        {"Authorization": f"Basic {MASTER_KEY}"},
    ],
)
def test_master_key_required(
    keyed: RunningProxy, fake_upstream: FakeUpstream, headers: dict[str, str]
) -> None:
    body = {"model": "auto", "messages": MESSAGES}
    assert_401(keyed.post(body, headers=headers))
    for route in ("/v1/models", "/ready"):
        assert_401(httpx.get(f"{keyed.url}{route}", headers=headers, timeout=5))
    assert fake_upstream.bodies() == []


def test_health_is_open_with_master_key(keyed: RunningProxy) -> None:
    assert httpx.get(f"{keyed.url}/health", timeout=5).status_code == 200


def test_sdk_with_master_key_works(keyed: RunningProxy, fake_upstream: FakeUpstream) -> None:
    with keyed.client(api_key=MASTER_KEY) as client:
        reply = client.chat.completions.create(model="auto", messages=MESSAGES)
        models = [model.id for model in client.models.list()]
    assert reply.choices[0].message.content == "Simulated reply from m1."
    assert models == ["m1", "m2", "auto"]
    upstream_auth = fake_upstream.requests()[0]["headers"]["authorization"]
    assert upstream_auth == "Bearer sk-test-secret-123456"  # the deployment's key, not the client's


def test_sdk_with_wrong_key_raises_authentication_error(keyed: RunningProxy) -> None:
    with keyed.client(api_key="nope") as client, pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="auto", messages=MESSAGES)
    assert caught.value.code == "invalid_api_key"
