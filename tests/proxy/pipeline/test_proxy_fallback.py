"""Each upstream failure kind falls back to the next model; the outcome record says so."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest
from support.proxy_harness import (
    MESSAGES,
    SECRET,
    ProxyFactory,
    RunningProxy,
    _shared_proxy,
    basic_config,
    direct_proxy,
    model_entry,
    module_proxy_factory,
    path,
    proxy,
    proxy_factory,
)
from support.servers import FakeUpstream, free_port

from proxy.forwarding.base import FailureKind
from proxy.pipeline.outcome import Outcome, Status

__all__ = ["_shared_proxy", "module_proxy_factory", "direct_proxy", "path", "proxy", "proxy_factory"]

FAILURES: dict[str, tuple[dict[str, Any], FailureKind]] = {
    "500": ({"fail_status": 500}, FailureKind.SERVER),
    "503": ({"fail_status": 503}, FailureKind.SERVER),
    "context_window": ({"context_window_error": True}, FailureKind.CONTEXT_WINDOW),
    "malformed_json": ({"malformed_json": True}, FailureKind.BAD_RESPONSE),
}


def kinds(outcome: Outcome) -> list[tuple[str, FailureKind | None]]:
    """(model, failure) of every attempt, in order."""
    return [(attempt.model, attempt.failure) for attempt in outcome.attempts]


def create(proxy: RunningProxy, **kwargs: Any) -> Any:
    """One non-streaming completion through the SDK; returns the raw response."""
    with proxy.client() as client:
        return client.chat.completions.with_raw_response.create(model="auto", messages=MESSAGES, **kwargs)


def assert_fell_back(proxy: RunningProxy, raw: Any, failure: FailureKind) -> Outcome:
    """m1 failed with ``failure``, m2 answered, and the outcome and headers agree."""
    assert raw.headers["x-model-manager-model"] == "m2"
    assert raw.headers["x-model-manager-attempts"] == "2"
    outcome, rewards = proxy.last()
    assert kinds(outcome) == [("m1", failure), ("m2", None)]
    assert outcome.status is Status.SUCCESS and outcome.model == "m2"
    assert outcome.fallbacks == 1
    assert rewards["m1"] == 0.0 and rewards["m2"] > 0.0
    return outcome


@pytest.mark.parametrize("name", list(FAILURES))
def test_failure_falls_back_to_next_model(
    proxy: RunningProxy, fake_upstream: FakeUpstream, name: str
) -> None:
    profile, failure = FAILURES[name]
    fake_upstream.set_profile("m1", **profile)
    raw = create(proxy)
    assert raw.parse().choices[0].message.content == "Simulated reply from m2."
    assert_fell_back(proxy, raw, failure)
    assert [body["model"] for body in fake_upstream.bodies()] == ["m1", "m2"]


def test_rate_limit_falls_back_and_rests_the_model(proxy: RunningProxy, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("m1", fail_status=429, retry_after_s=30)
    assert_fell_back(proxy, create(proxy), FailureKind.RATE_LIMITED)
    assert proxy.services.cooldowns.resting("m1")
    raw = create(proxy)
    assert raw.headers["x-model-manager-model"] == "m2"
    assert raw.headers["x-model-manager-attempts"] == "1"
    second, _ = proxy.outcomes(2)[1]
    assert kinds(second) == [("m2", None)]
    assert fake_upstream.stats()["m1"]["requests"] == 1


def test_retry_after_sets_the_rest_period(proxy: RunningProxy, fake_upstream: FakeUpstream) -> None:
    fake_upstream.script("m1", [{"fail_status": 429, "retry_after_s": 0}])
    assert_fell_back(proxy, create(proxy), FailureKind.RATE_LIMITED)
    raw = create(proxy)  # Retry-After: 0 means no rest (the default rest would be seconds)
    assert raw.headers["x-model-manager-model"] == "m1"
    assert fake_upstream.stats()["m1"]["requests"] == 2


def test_timeout_of_a_hanging_model_falls_back(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream, path: str
) -> None:
    proxy = proxy_factory(basic_config(fake_upstream, path=path, router={"attempt_timeout_s": 0.5}))
    fake_upstream.set_profile("m1", hang=True)
    outcome = assert_fell_back(proxy, create(proxy), FailureKind.TIMEOUT)
    assert 0.4 < outcome.attempts[0].latency_s < 3.0


def test_timeout_of_a_slow_model_falls_back(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream, path: str
) -> None:
    proxy = proxy_factory(basic_config(fake_upstream, path=path, router={"attempt_timeout_s": 0.3}))
    fake_upstream.set_profile("m1", latency_ms=5000)
    assert_fell_back(proxy, create(proxy), FailureKind.TIMEOUT)


def test_the_overall_deadline_bounds_every_attempt(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream, path: str
) -> None:
    """attempt_timeout 0.6 s, deadline 1 s, three slow models: the first attempt gets 0.6 s,
    the second the 0.4 s left, and no third is made."""
    config = basic_config(
        fake_upstream, ("m1", "m2", "m3"), path=path,
        router={"attempt_timeout_s": 0.6, "deadline_s": 1.0, "max_attempts": 3},
    )
    proxy = proxy_factory(config)
    for model in ("m1", "m2", "m3"):
        fake_upstream.set_profile(model, latency_ms=5000)
    with proxy.client() as client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="auto", messages=MESSAGES)
    assert caught.value.status_code == 502
    outcome, _ = proxy.last()
    assert [a.model for a in outcome.attempts] == ["m1", "m2"]
    first, second = (a.latency_s for a in outcome.attempts)
    assert first > 0.5 and second < first  # the second got only what the deadline left
    assert first + second < 3.0  # loose: timeouts fired, the 5 s answers were not awaited


def test_connection_refused_falls_back(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream, path: str
) -> None:
    config = basic_config(fake_upstream, path=path)
    config["model_list"][0] = model_entry("m1", f"http://127.0.0.1:{free_port()}/v1")
    proxy = proxy_factory(config)
    assert_fell_back(proxy, create(proxy), FailureKind.CONNECTION)
    assert [body["model"] for body in fake_upstream.bodies()] == ["m2"]


def test_max_attempts_bounds_the_fallbacks(proxy_factory: ProxyFactory, fake_upstream: FakeUpstream) -> None:
    config = basic_config(fake_upstream, ("m1", "m2", "m3"), router={"max_attempts": 2})
    proxy = proxy_factory(config)
    for model in ("m1", "m2"):
        fake_upstream.set_profile(model, fail_status=500)
    response = proxy.post({"model": "auto", "messages": MESSAGES}, headers={"X-Agent": "a"})
    assert response.status_code == 502
    assert [body["model"] for body in fake_upstream.bodies()] == ["m1", "m2"]
    assert response.headers["x-model-manager-attempts"] == "2"


# --- all failing, client errors ---------------------------------------------------------


def test_all_models_failing_is_502_with_reasons_and_no_secret(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream, path: str
) -> None:
    config = basic_config(fake_upstream, ("m1", "m2", "m3"), path=path)
    config["model_list"][2] = model_entry("m3", f"http://127.0.0.1:{free_port()}/v1")
    proxy = proxy_factory(config)
    fake_upstream.set_profile("m1", fail_status=500)
    fake_upstream.set_profile("m2", fail_status=401)
    with proxy.client() as client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="auto", messages=MESSAGES)
    error = caught.value
    assert error.status_code == 502
    assert SECRET not in error.response.text
    body = error.response.json()["error"]
    assert body["code"] == "all_models_failed" and body["type"] == "server_error"
    assert [detail["model"] for detail in body["details"]] == ["m1", "m2", "m3"]
    assert [d["error"] for d in body["details"]] == ["server_error", "auth_error", "connection_error"]
    assert all(name in body["message"] for name in ("m1", "m2", "m3"))
    outcome, rewards = proxy.last()
    assert outcome.status is Status.FAILED and outcome.model is None
    assert rewards == {"m1": 0.0, "m2": 0.0, "m3": 0.0}


def test_upstream_client_error_returns_at_once_and_penalises_no_model(
    proxy: RunningProxy, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.set_profile("m1", fail_status=400)
    with proxy.client() as client, pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="auto", messages=MESSAGES)
    assert caught.value.response.headers["x-model-manager-attempts"] == "1"
    assert SECRET not in caught.value.response.text
    assert len(fake_upstream.bodies()) == 1
    outcome, rewards = proxy.last()
    assert outcome.status is Status.CLIENT_ERROR
    assert kinds(outcome) == [("m1", FailureKind.CLIENT)]
    assert rewards == {}


# --- streaming -------------------------------------------------------------------------


@pytest.mark.parametrize("profile", [{"fail_status": 503}, {"fail_status": 429}, {"hang": True}])
def test_stream_failure_before_first_chunk_falls_back_invisibly(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream, path: str, profile: dict[str, Any]
) -> None:
    config = basic_config(fake_upstream, path=path, router={"first_chunk_timeout_s": 0.5})
    proxy = proxy_factory(config)
    fake_upstream.set_profile("m1", **profile)
    fake_upstream.set_profile("m2", content="from two", chunks=2)
    with proxy.client() as client:
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=MESSAGES, stream=True)
        assert raw.headers["x-model-manager-model"] == "m2"
        assert raw.headers["x-model-manager-attempts"] == "2"
        chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "from two"
    outcome, rewards = proxy.last()
    assert [model for model, _ in kinds(outcome)] == ["m1", "m2"]
    assert outcome.attempts[0].failure is not None and outcome.attempts[1].failure is None
    assert outcome.status is Status.SUCCESS and rewards["m1"] == 0.0


def relayed_before_cut(path: str, cut: int) -> range:
    """How many chunks reach the client when upstream closes right after ``cut`` events.

    The direct path relays every whole event. litellm sometimes loses the last event that
    arrived together with the connection reset (it raises before yielding it).
    """
    return range(cut, cut + 1) if path == "direct" else range(1, cut + 1)


def test_stream_cut_midway_ends_with_one_error_event(
    proxy: RunningProxy, fake_upstream: FakeUpstream, path: str
) -> None:
    fake_upstream.set_profile("m1", chunks=6, cut_stream_after=3)
    fake_upstream.set_profile("m2", fail_status=500)  # no model left to continue it
    received = []
    with proxy.client() as client, pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(model="auto", messages=MESSAGES, stream=True):
            received.append(chunk)
    assert len(received) in relayed_before_cut(path, 3)
    assert caught.value.message
    outcome, rewards = proxy.last()
    assert outcome.status is Status.STREAM_ERROR and outcome.model == "m1"
    assert kinds(outcome) == [("m1", FailureKind.STREAM_CUT), ("m2", FailureKind.SERVER)]
    assert rewards == {"m1": 0.0, "m2": 0.0}
    assert [body["model"] for body in fake_upstream.bodies()] == ["m1", "m2"]


def test_stream_cut_raw_frames(proxy: RunningProxy, fake_upstream: FakeUpstream, path: str) -> None:
    fake_upstream.set_profile("m1", chunks=6, cut_stream_after=2)
    fake_upstream.set_profile("m2", fail_status=500)  # no model left to continue it
    response = proxy.post({"model": "auto", "messages": MESSAGES, "stream": True})
    assert response.status_code == 200
    events = [orjson.loads(line[6:]) for line in response.text.split("\n") if line.startswith("data: ")]
    assert "[DONE]" not in response.text
    assert ["error" in event for event in events] == [False] * (len(events) - 1) + [True]
    assert len(events) - 1 in relayed_before_cut(path, 2)
    error = events[-1]["error"]
    assert {"message", "type", "code"} <= set(error) and error["code"] == "upstream_stream_error"
    assert SECRET not in response.text


def test_all_models_failing_on_stream_is_502_json(proxy: RunningProxy, fake_upstream: FakeUpstream) -> None:
    for model in ("m1", "m2"):
        fake_upstream.set_profile(model, fail_status=500)
    body = {"model": "auto", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{proxy.base_url}/chat/completions", json=body, timeout=10) as response:
        response.read()
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == "all_models_failed"
    assert SECRET not in response.text
