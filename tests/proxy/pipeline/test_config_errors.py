"""Errors of a deployment's own configuration or credentials are that model's failure.

Real servers: the proxy under uvicorn, the simulator sending nginx-style HTML error pages,
real litellm and the official openai SDK. A 401/403/404 (or a model litellm cannot resolve
at call time) falls back to the next model, rests the failing one with its reason in
/ready, logs one warning, and never reaches the client; a 413 tries a model with a larger
window and never echoes the HTML page.
"""

from __future__ import annotations

import logging

import httpx
import openai
import pytest
from support.proxy_harness import MESSAGES, SECRET, ProxyFactory, basic_config, path, proxy_factory
from support.servers import FakeUpstream

__all__ = ["path", "proxy_factory"]
CALLS = 4


def _ready(url: str) -> dict[str, object]:
    body: dict[str, object] = httpx.get(f"{url}/ready", timeout=10).json()
    return body


def _rest_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "model_manager.pipeline" and "resting" in r.getMessage()
    ]


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_credentials_or_model_error_falls_back_and_rests_the_model(
    proxy_factory: ProxyFactory,
    fake_upstream: FakeUpstream,
    path: str,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_upstream.set_profile("m1", fail_status=status, html_error=True)
    proxy = proxy_factory(basic_config(fake_upstream, path=path))
    caplog.set_level(logging.WARNING, "model_manager.pipeline")
    client = proxy.client()
    answered = [
        client.chat.completions.with_raw_response.create(model="auto", messages=MESSAGES).headers[
            "x-model-manager-model"
        ]
        for _ in range(CALLS)
    ]
    assert answered == ["m2"] * CALLS
    assert fake_upstream.stats()["m1"]["requests"] == 1  # rested after its first failure
    resting = _ready(proxy.url)["resting_models"]
    assert isinstance(resting, dict) and set(resting) == {"m1"}, resting
    reason = str(resting["m1"]["reason"])
    assert reason.startswith(("auth_error", "not_found")) and str(status) in reason, reason
    assert "<" not in reason, reason
    assert len(_rest_warnings(caplog)) == 1, _rest_warnings(caplog)


def test_a_model_litellm_cannot_resolve_at_call_time_falls_back(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """``mystery-model-9`` passes the config check but has no provider: litellm raises
    BadRequestError "LLM Provider NOT provided" when it is called."""
    config = basic_config(fake_upstream, ("m2",), path="litellm")
    broken = {"model": "mystery-model-9", "api_base": fake_upstream.url, "api_key": SECRET}
    config["model_list"].insert(0, {"model_name": "typo", "litellm_params": broken})
    proxy = proxy_factory(config)
    caplog.set_level(logging.WARNING, "model_manager.pipeline")
    client = proxy.client()
    for _ in range(CALLS):
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=MESSAGES)
        assert raw.headers["x-model-manager-model"] == "m2"
    resting = _ready(proxy.url)["resting_models"]
    assert isinstance(resting, dict) and set(resting) == {"typo"}, resting
    assert "LLM Provider NOT provided" in str(resting["typo"]["reason"])
    assert len(_rest_warnings(caplog)) == 1
    _, rewards = proxy.outcomes(1)[0]
    assert rewards == {"typo": 0.0, "m2": rewards["m2"]} and rewards["m2"] > 0


def test_a_413_html_page_tries_the_next_model_and_is_never_echoed(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream, path: str
) -> None:
    fake_upstream.set_profile("m1", fail_status=413, html_error=True)
    proxy = proxy_factory(basic_config(fake_upstream, path=path))
    raw = proxy.client().chat.completions.with_raw_response.create(model="auto", messages=MESSAGES)
    assert raw.headers["x-model-manager-model"] == "m2"
    assert _ready(proxy.url)["resting_models"] == {}  # too large for m1, not m1's fault for good

    fake_upstream.set_profile("m2", fail_status=413, html_error=True)
    with pytest.raises(openai.APIStatusError) as raised:
        proxy.client().chat.completions.create(model="auto", messages=MESSAGES)
    message = str(raised.value.body)
    assert "413" in message and "<" not in message and "nginx" in message, message


def test_a_client_error_is_returned_at_once(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream, path: str
) -> None:
    """A 400 about the request's own fields would be rejected by every model."""
    fake_upstream.set_profile("m1", fail_status=400)
    proxy = proxy_factory(basic_config(fake_upstream, path=path))
    with pytest.raises(openai.BadRequestError):
        proxy.client().chat.completions.create(model="auto", messages=MESSAGES)
    assert fake_upstream.stats().get("m2", {}).get("requests", 0) == 0
    assert _ready(proxy.url)["resting_models"] == {}
