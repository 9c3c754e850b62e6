"""The Responses API relayed natively to a deployment that speaks it, next to a chat-only one.

``n1`` lists ``/v1/responses`` in ``model_info.supported_endpoints``; ``m2`` does not. Both are
on the fake upstream (the simulator, which serves ``/v1/responses`` natively), the proxy runs
under uvicorn and the client is the official openai SDK. With the fixed policy ``n1`` is tried
first: its answer must come from the upstream's ``/v1/responses`` (never ``/chat/completions``),
and when it fails the request falls back to ``m2``, translated. Both forwarding paths are run:
the native relay does not depend on ``router.direct_forwarding``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from support.proxy_harness import (
    ProxyFactory,
    RunningProxy,
    basic_config,
    model_entry,
    module_proxy_factory,
    path,
    proxy_factory,
)
from support.servers import FakeUpstream

from proxy.forwarding.base import FailureKind
from proxy.pipeline.outcome import Status
from tests.support.responses_api import TEXT_EVENTS, WEATHER_TOOL

__all__ = ["module_proxy_factory", "path", "proxy_factory"]

ENDPOINTS = ["/v1/chat/completions", "/v1/responses"]
PRICES = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}


def native_config(upstream: FakeUpstream, path: str, **router: Any) -> dict[str, Any]:
    config = basic_config(upstream, path=path, router=router)
    config["model_list"] = [
        model_entry("n1", upstream.url, supported_endpoints=ENDPOINTS, **PRICES),
        model_entry("m2", upstream.url),
    ]
    return config


@pytest.fixture(scope="module")
def _native_proxy(
    module_proxy_factory: ProxyFactory, _fake_upstream_session: FakeUpstream, path: str
) -> RunningProxy:
    return module_proxy_factory(native_config(_fake_upstream_session, path))


@pytest.fixture
def proxy(_native_proxy: RunningProxy, fake_upstream: FakeUpstream) -> Iterator[RunningProxy]:
    _native_proxy.reset()
    yield _native_proxy


def paths(upstream: FakeUpstream) -> list[str]:
    """The API paths the upstream was called on, in order."""
    return [r["path"] for r in upstream.requests()]


def test_create_is_relayed_natively_with_usage_cost_and_headers(
    proxy: RunningProxy, fake_upstream: FakeUpstream
) -> None:
    with proxy.client() as client:
        raw = client.responses.with_raw_response.create(
            model="auto",
            input="Say hello",
            instructions="Be brief",
            max_output_tokens=50,
            metadata={"k": "v"},
        )
    response = raw.parse()
    assert response.output_text == "Simulated reply from n1."
    assert response.status == "completed" and response.model == "n1"
    assert response.id != "resp_" + raw.headers["x-request-id"]  # the upstream's own response id
    assert paths(fake_upstream) == ["/v1/responses"]
    [sent] = fake_upstream.bodies("/v1/responses")
    assert sent["input"] == "Say hello" and sent["instructions"] == "Be brief"  # not translated
    assert sent["max_output_tokens"] == 50 and sent["metadata"] == {"k": "v"} and sent["model"] == "n1"
    assert raw.headers["x-model-manager-model"] == "n1"
    assert raw.headers["x-model-manager-attempts"] == "1"
    assert raw.headers["x-model-manager-decision"] == "sampled"
    assert response.usage is not None and response.usage.output_tokens == 4
    outcome, rewards = proxy.last()
    assert outcome.status is Status.SUCCESS and outcome.model == "n1" and rewards["n1"] > 0
    assert outcome.summary is not None
    assert outcome.summary.text == "Simulated reply from n1." and outcome.summary.finish_reason == "stop"
    usage = outcome.summary.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (response.usage.input_tokens, 4)
    record = httpx.get(f"{proxy.base_url}/requests/{raw.headers['x-request-id']}").json()
    assert record["model"] == "n1" and record["quality"] > 0
    assert record["cost_usd"] == pytest.approx(1e-6 * response.usage.input_tokens + 2e-6 * 4)


def test_stream_events_are_the_upstreams_relayed_as_they_came(
    proxy: RunningProxy, fake_upstream: FakeUpstream
) -> None:
    with (
        proxy.client() as client,
        client.responses.stream(model="auto", input="Say hello", instructions="Be brief") as stream,
    ):
        events = list(stream)
        final = stream.get_final_response()
    assert [event.type for event in events] == TEXT_EVENTS
    assert [event.sequence_number for event in events] == list(range(len(TEXT_EVENTS)))
    assert final.output_text == "Simulated reply from n1." and final.usage is not None
    assert final.id == events[0].response.id and final.usage.output_tokens == 4
    assert paths(fake_upstream) == ["/v1/responses"]
    [sent] = fake_upstream.bodies("/v1/responses")
    assert sent["stream"] is True and sent["instructions"] == "Be brief"
    outcome, rewards = proxy.last()
    assert outcome.status is Status.SUCCESS and rewards["n1"] > 0 and outcome.ttft_s is not None
    assert outcome.summary is not None and outcome.summary.text == "Simulated reply from n1."
    assert outcome.summary.usage.completion_tokens == 4


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_function_tools_go_natively_and_are_learned(
    proxy: RunningProxy, fake_upstream: FakeUpstream, stream: bool
) -> None:
    fake_upstream.set_profile("n1", tool_call=True, tool_arguments='{"city": "Paris"}')
    with proxy.client() as client:
        if stream:
            with client.responses.stream(model="auto", input="Weather?", tools=[WEATHER_TOOL]) as events:
                kinds = [event.type for event in events]
                response = events.get_final_response()
            assert "response.function_call_arguments.done" in kinds
        else:
            response = client.responses.create(model="auto", input="Weather?", tools=[WEATHER_TOOL])
    [call] = response.output
    assert call.type == "function_call" and (call.name, call.arguments) == (
        "get_weather",
        '{"city": "Paris"}',
    )
    assert fake_upstream.bodies("/v1/responses")[0]["tools"] == [WEATHER_TOOL]  # the Responses shape
    outcome, _ = proxy.last()
    assert outcome.summary is not None and outcome.summary.finish_reason == "tool_calls"
    assert outcome.summary.tool_calls == [("get_weather", '{"city": "Paris"}')]


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ({"fail_status": 500}, FailureKind.SERVER),
        ({"fail_status": 429, "retry_after_s": 30}, FailureKind.RATE_LIMITED),
        ({"fail_status": 404}, FailureKind.NOT_FOUND),
        ({"html_error": True, "fail_status": 502}, FailureKind.SERVER),
    ],
    ids=["500", "429", "404", "html-502"],
)
def test_a_failing_native_model_falls_back_to_a_translated_one(
    proxy: RunningProxy, fake_upstream: FakeUpstream, stream: bool, fault: dict[str, Any], kind: FailureKind
) -> None:
    fake_upstream.set_profile("n1", **fault)
    with proxy.client() as client:
        if stream:
            raw = client.responses.with_streaming_response.create(model="auto", input="hi", stream=True)
            with raw as response:
                headers = response.headers
                text = "".join(e.delta for e in response.parse() if e.type == "response.output_text.delta")
        else:
            answer = client.responses.with_raw_response.create(model="auto", input="hi")
            headers, text = answer.headers, answer.parse().output_text
    assert text == "Simulated reply from m2."
    assert headers["x-model-manager-model"] == "m2" and headers["x-model-manager-attempts"] == "2"
    assert headers["x-model-manager-decision"] == "fallback"
    assert paths(fake_upstream) == ["/v1/responses", "/v1/chat/completions"]
    outcome, rewards = proxy.last()
    assert [(a.model, a.failure) for a in outcome.attempts] == [("n1", kind), ("m2", None)]
    assert rewards["n1"] == 0.0 and rewards["m2"] > 0.0
    assert proxy.services.cooldowns.resting("n1") is (
        kind in (FailureKind.RATE_LIMITED, FailureKind.NOT_FOUND)
    )


def test_a_request_error_is_returned_at_once(proxy: RunningProxy, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("n1", fail_status=400)
    with proxy.client() as client, pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="auto", input="hi")
    assert raised.value.status_code == 400 and "Invalid request" in str(raised.value.message)
    assert paths(fake_upstream) == ["/v1/responses"]
    outcome, rewards = proxy.last()
    assert outcome.status is Status.CLIENT_ERROR and outcome.attempts[0].failure is FailureKind.CLIENT
    assert rewards == {}


def test_a_native_stream_cut_mid_way_ends_in_response_failed(
    proxy: RunningProxy, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.set_profile("n1", cut_stream_after=6)
    with proxy.client() as client, client.responses.stream(model="auto", input="hi") as stream:
        events = list(stream)
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()
    assert [e.type for e in events[:-1]] == TEXT_EVENTS[:6]
    last = events[-1]
    assert last.type == "response.failed" and last.sequence_number == 6
    assert last.response.error is not None and last.response.error.code == "server_error"
    assert last.response.id == events[0].response.id
    outcome, rewards = proxy.last()
    assert outcome.status is Status.STREAM_ERROR and rewards["n1"] == 0.0
    assert [(a.model, a.failure) for a in outcome.attempts] == [("n1", FailureKind.STREAM_CUT)]
    relayed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert relayed and outcome.summary is not None and outcome.summary.text == relayed


def test_a_pinned_chat_only_model_is_translated_and_chat_requests_stay_chat(
    proxy: RunningProxy, fake_upstream: FakeUpstream
) -> None:
    with proxy.client() as client:
        translated = client.responses.create(
            model="m2", input="hi", extra_headers={"X-Model-Manager-Pin": "true"}
        )
        chat = client.chat.completions.create(model="n1", messages=[{"role": "user", "content": "hi"}])
    assert translated.output_text == "Simulated reply from m2."
    assert chat.choices[0].message.content == "Simulated reply from n1."
    assert paths(fake_upstream) == ["/v1/chat/completions", "/v1/chat/completions"]
    assert [b["model"] for b in fake_upstream.bodies()] == ["m2", "n1"]


def test_stats_count_native_answers(proxy: RunningProxy, fake_upstream: FakeUpstream) -> None:
    with proxy.client(agent="native-stats") as client:
        for _ in range(2):
            client.responses.create(model="auto", input="hi")
    proxy.outcomes(2)
    [agent] = httpx.get(f"{proxy.base_url}/stats", params={"agent": "native-stats"}).json()["agents"]
    [model] = agent["models"]
    assert (agent["requests"], model["model"], model["successes"], model["tokens_out"]) == (2, "n1", 2, 8)


def test_a_hanging_native_model_times_out_and_falls_back(
    proxy_factory: ProxyFactory, fake_upstream: FakeUpstream
) -> None:
    proxy = proxy_factory(
        native_config(fake_upstream, "direct", attempt_timeout_s=1, first_chunk_timeout_s=1)
    )
    fake_upstream.set_profile("n1", hang=True)
    with proxy.client() as client, client.responses.stream(model="auto", input="hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Simulated reply from m2."
    outcome, _ = proxy.last()
    assert [(a.model, a.failure) for a in outcome.attempts] == [("n1", FailureKind.TIMEOUT), ("m2", None)]


def test_a_failure_event_before_any_output_falls_back(
    proxy: RunningProxy, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.set_profile("n1", error_event_after=2)  # response.created, .in_progress, .failed
    with proxy.client() as client, client.responses.stream(model="auto", input="hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert final.output_text == "Simulated reply from m2." and final.model == "m2"
    assert "response.failed" not in [event.type for event in events]
    outcome, _ = proxy.last()
    assert [(a.model, a.failure) for a in outcome.attempts] == [("n1", FailureKind.SERVER), ("m2", None)]
    assert "failed mid-stream (simulated)" in outcome.attempts[0].message


def test_the_upstreams_own_failure_event_ends_the_stream_once(
    proxy: RunningProxy, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.set_profile("n1", error_event_after=5)
    with proxy.client() as client, client.responses.stream(model="auto", input="hi") as stream:
        events = list(stream)
    assert [e.type for e in events] == [*TEXT_EVENTS[:5], "response.failed"]
    failed = events[-1]
    assert failed.type == "response.failed" and failed.sequence_number == 5
    assert failed.response.error is not None
    assert failed.response.error.message == "The model failed mid-stream (simulated)."
    outcome, rewards = proxy.last()
    assert outcome.status is Status.STREAM_ERROR and rewards["n1"] == 0.0
    assert outcome.attempts[0].failure is FailureKind.STREAM_CUT
