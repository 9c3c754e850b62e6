"""The official openai SDK's Responses calls against the proxy in front of a chat-only upstream.

The proxy runs under uvicorn, the fake upstream speaks chat completions only, and every call
goes through ``client.responses.create`` / ``client.responses.stream`` unchanged: routing,
fallback, learning and headers are the chat pipeline's, translated at the edge.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from support.proxy_harness import (
    RunningProxy,
    _shared_proxy,
    module_proxy_factory,
    path,
    proxy,
)
from support.servers import FakeUpstream
from support.waiting import wait_for

from proxy.forwarding.base import FailureKind
from proxy.pipeline.outcome import Status
from tests.support.responses_api import TEXT_EVENTS, WEATHER_TOOL

__all__ = ["_shared_proxy", "module_proxy_factory", "path", "proxy"]



def test_create_answers_text_with_usage_and_headers(proxy: RunningProxy, fake_upstream: FakeUpstream) -> None:
    with proxy.client() as client:
        raw = client.responses.with_raw_response.create(
            model="auto", input="Say hello", instructions="Be brief", max_output_tokens=50, temperature=0.2
        )
    response = raw.parse()
    assert response.output_text == "Simulated reply from m1."
    assert response.status == "completed" and response.id.startswith("resp_")
    assert response.instructions == "Be brief" and response.max_output_tokens == 50
    assert response.usage is not None
    assert response.usage.output_tokens == 4
    assert response.usage.total_tokens == response.usage.input_tokens + 4 and response.usage.input_tokens > 0
    assert raw.headers["x-model-manager-model"] == "m1"
    assert raw.headers["x-model-manager-attempts"] == "1"
    assert response.id == "resp_" + raw.headers["x-request-id"]
    [sent] = fake_upstream.bodies()
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "Say hello"},
    ]
    assert sent["max_tokens"] == 50 and sent["temperature"] == 0.2
    outcome, rewards = proxy.last()
    assert outcome.status is Status.SUCCESS and outcome.model == "m1" and rewards["m1"] > 0


def test_stream_events_in_order_parsed_by_the_sdk(proxy: RunningProxy, fake_upstream: FakeUpstream) -> None:
    with proxy.client() as client, client.responses.stream(model="auto", input="Say hello") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert [event.type for event in events] == TEXT_EVENTS
    assert [event.sequence_number for event in events] == list(range(len(TEXT_EVENTS)))
    deltas = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert deltas == final.output_text == "Simulated reply from m1."
    assert final.status == "completed" and final.model == "m1"
    assert final.usage is not None and final.usage.output_tokens == 4
    created = events[0]
    assert created.type == "response.created" and created.response.status == "in_progress"
    assert final.id == created.response.id
    outcome, rewards = proxy.last()
    assert outcome.status is Status.SUCCESS and rewards["m1"] > 0
    assert outcome.summary is not None and outcome.summary.text == "Simulated reply from m1."


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_function_call_round_trip(proxy: RunningProxy, fake_upstream: FakeUpstream, stream: bool) -> None:
    fake_upstream.set_profile("m1", tool_call=True, tool_arguments='{"city": "Paris"}')
    with proxy.client() as client:
        first = _respond(client, stream, input="Weather in Paris?", tools=[WEATHER_TOOL])
        [call] = first.output
        assert call.type == "function_call"
        assert (call.name, call.arguments) == ("get_weather", '{"city": "Paris"}')
        fake_upstream.set_profile("m1")
        outputs = [{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]
        history: list[Any] = [{"role": "user", "content": "Weather in Paris?"}, call, *outputs]
        second = _respond(client, stream, input=history, tools=[WEATHER_TOOL])
    assert second.output_text == "Simulated reply from m1."
    sent = fake_upstream.bodies()
    assert sent[0]["tools"] == [
        {
            "type": "function",
            "function": {k: WEATHER_TOOL[k] for k in ("name", "description", "parameters")},
        }
    ]
    tool_call = {
        "id": call.call_id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    without_nulls = [{k: v for k, v in m.items() if v is not None} for m in sent[1]["messages"]]
    assert without_nulls[1:] == [  # litellm drops the assistant's null content
        {"role": "assistant", "tool_calls": [tool_call]},
        {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"},
    ]


def _respond(client: openai.OpenAI, stream: bool, **params: Any) -> Any:
    """One response through create or stream (its final response)."""
    if not stream:
        return client.responses.create(model="auto", **params)
    with client.responses.stream(model="auto", **params) as events:
        kinds = [event.type for event in events]
        if params.get("tools") and "response.function_call_arguments.delta" in kinds:
            assert "response.function_call_arguments.done" in kinds
        return events.get_final_response()


def test_stream_function_call_events(proxy: RunningProxy, fake_upstream: FakeUpstream) -> None:
    fake_upstream.set_profile("m1", tool_call=True, tool_arguments='{"city": "Paris"}', chunks=2)
    with (
        proxy.client() as client,
        client.responses.stream(
            model="auto", input="Weather?", tools=[WEATHER_TOOL], tool_choice="required"
        ) as stream,
    ):
        events = list(stream)
    assert [event.type for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = events[5]
    assert done.type == "response.function_call_arguments.done" and done.arguments == '{"city": "Paris"}'
    assert fake_upstream.bodies()[0]["tool_choice"] == "required"


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_falls_back_when_the_first_model_fails(
    proxy: RunningProxy, fake_upstream: FakeUpstream, stream: bool
) -> None:
    fake_upstream.set_profile("m1", fail_status=500)
    with proxy.client() as client:
        if stream:
            raw = client.responses.with_streaming_response.create(model="auto", input="hi", stream=True)
            with raw as response:
                headers = response.headers
                text = "".join(e.delta for e in response.parse() if e.type == "response.output_text.delta")
        else:
            response = client.responses.with_raw_response.create(model="auto", input="hi")
            headers, text = response.headers, response.parse().output_text
    assert text == "Simulated reply from m2."
    assert headers["x-model-manager-model"] == "m2" and headers["x-model-manager-attempts"] == "2"
    outcome, rewards = proxy.last()
    assert [(a.model, a.failure) for a in outcome.attempts] == [("m1", FailureKind.SERVER), ("m2", None)]
    assert rewards["m1"] == 0.0 and rewards["m2"] > 0.0


def test_a_stream_cut_mid_way_ends_in_response_failed(
    proxy: RunningProxy, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.set_profile("m1", cut_stream_after=3)
    fake_upstream.set_profile("m2", fail_status=500)  # no model left to continue it
    with proxy.client() as client, client.responses.stream(model="auto", input="hi") as stream:
        events = list(stream)
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()
    assert events[-1].type == "response.failed"
    assert events[-1].response.error is not None and events[-1].response.error.code == "server_error"
    assert proxy.last()[0].status is Status.STREAM_ERROR


def test_json_schema_format_metadata_and_tool_choice_are_translated(
    proxy: RunningProxy, fake_upstream: FakeUpstream
) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    with proxy.client() as client:
        response = client.responses.create(
            model="m2",
            input=[
                {"role": "developer", "content": "JSON only"},
                {"role": "user", "content": [{"type": "input_text", "text": "go"}]},
            ],
            text={"format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}},
            metadata={"ticket": "42"},
            top_p=0.5,
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "name": "get_weather"},
            extra_headers={"X-Model-Manager-Pin": "true"},
        )
    assert response.metadata == {"ticket": "42"}
    [sent] = fake_upstream.bodies()
    assert sent["model"] == "m2" and sent["top_p"] == 0.5
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["messages"] == [
        {"role": "system", "content": "JSON only"},
        {"role": "user", "content": [{"type": "text", "text": "go"}]},
    ]
    assert "metadata" not in sent
    outcome, _ = proxy.last()
    assert outcome.wants_json and outcome.model == "m2"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"previous_response_id": "resp_123"}, "previous_response_id"),
        ({"store": True}, "store"),
        ({"tools": [{"type": "web_search"}]}, "tools[0]"),
    ],
)
def test_unsupported_fields_get_an_openai_shaped_400(
    proxy: RunningProxy, fake_upstream: FakeUpstream, params: dict[str, Any], param: str
) -> None:
    with proxy.client() as client, pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="auto", input="hi", **params)
    error = raised.value.body
    assert isinstance(error, dict)
    assert (error["code"], error["param"], error["type"]) == (
        "unsupported_parameter",
        param,
        "invalid_request_error",
    )
    assert fake_upstream.bodies() == []


@pytest.mark.parametrize(
    ("content", "code", "param"),
    [
        (b"{not json", "invalid_json", None),
        (b'{"model": "auto"}', "invalid_request", "input"),
        (
            b'{"input": [{"type": "message", "role": "robot", "content": "x"}]}',
            "invalid_request",
            "input[0].role",
        ),
        (b'{"input": "hi", "stream": "yes"}', "invalid_request", "stream"),
    ],
)
def test_malformed_bodies_get_a_400(
    proxy: RunningProxy, fake_upstream: FakeUpstream, content: bytes, code: str, param: str | None
) -> None:
    response = httpx.post(f"{proxy.base_url}/responses", content=content, headers={"X-Agent": "a"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code and response.json()["error"]["param"] == param
    assert fake_upstream.bodies() == []


def test_agent_workflow_stats_and_feedback_are_tracked(
    proxy: RunningProxy, fake_upstream: FakeUpstream
) -> None:
    with proxy.client(agent="responder") as client:
        raw = client.responses.with_raw_response.create(
            model="auto", input="hi", extra_headers={"X-Workflow": "wf-r"}
        )
    request_id = raw.headers["x-request-id"]
    outcome, _ = proxy.last()
    assert (outcome.decision_request.agent, outcome.workflow) == ("responder", "wf-r")
    workflow = f"{proxy.base_url}/workflows/wf-r"
    wait_for(lambda: request_id in httpx.get(workflow).json().get("request_ids", []))
    [agent] = httpx.get(f"{proxy.base_url}/stats", params={"agent": "responder"}).json()["agents"]
    [model] = agent["models"]
    assert (agent["requests"], model["model"], model["successes"], model["tokens_out"]) == (1, "m1", 1, 4)
    feedback = httpx.post(f"{proxy.base_url}/feedback", json={"request_id": request_id, "score": 0.9})
    assert feedback.status_code == 200, feedback.text


def test_a_stream_closed_early_cancels_upstream_and_learns_nothing(
    proxy: RunningProxy, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.set_profile("m1", chunks=200, chunk_interval_ms=20)
    with proxy.client() as client, client.responses.stream(model="auto", input="hi") as stream:
        kinds = [next(iter(stream)).type for _ in range(4)]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    wait_for(lambda: fake_upstream.stats().get("m1", {}).get("cancelled", 0) == 1)
    outcome, rewards = proxy.last()
    assert (outcome.status, rewards) == (Status.CANCELLED, {})
    assert fake_upstream.stats()["m1"]["completed"] == 0
